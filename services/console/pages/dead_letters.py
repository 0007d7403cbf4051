"""Dead letters for operators: what each service parked (list) and one record's facts (show).

No service answers for its dead-letter topic over gRPC, so this page reads the topic itself,
as `xiezuo dead-letter list` does: without a consumer group (no one's offsets move), with the
console's Kafka identity. Only holders of the `operator` role see it. Replaying stays with the
CLI (`xiezuo dead-letter replay`): there is no RPC for it to call.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.console.county.views import dead_letter_rows
from services.console.session import signed_in
from services.console.web import NavLink, render
from services.runtime.deadletters import DeadLetter, read_dead_letters
from services.runtime.settings import SERVICES, PlatformSettings

OPERATOR_ROLES = frozenset({"operator"})
# The page shows the newest of at most this many parked records per service.
LIST_LIMIT = 500


def _service(request: Request) -> str:
    user = signed_in(request)
    if not user.has_role(*OPERATOR_ROLES):
        raise HTTPException(403, "dead letters are for operators")
    service = str(request.path_params.get("service") or request.query_params.get("service", ""))
    service = service or SERVICES[0]
    if service not in SERVICES:
        raise HTTPException(404, f"no service {service!r}")
    return service


async def _read(request: Request, service: str) -> list[DeadLetter]:
    platform: PlatformSettings = request.app.state.platform
    try:
        return await read_dead_letters(
            platform.kafka_bootstrap,
            service,
            limit=LIST_LIMIT,
            security=platform.kafka_security(),
        )
    except Exception as error:  # the broker's failure is the page's 503, not a traceback
        raise HTTPException(503, f"Kafka: {type(error).__name__}") from error


async def dead_letters(request: Request) -> Response:
    """One service's parked records, newest first, with their reason and origin."""
    service = _service(request)
    letters = await _read(request, service)
    return render(
        request,
        "dead_letters/list.html",
        {"service": service, "services": SERVICES, "rows": dead_letter_rows(letters)},
    )


async def dead_letter(request: Request) -> Response:
    """One parked record: its error, attempts, origin and CloudEvents headers."""
    service = _service(request)
    event_id = request.path_params["event_id"]
    letters = await _read(request, service)
    rows = [row for row in dead_letter_rows(letters) if row.event_id == event_id]
    if not rows:
        raise HTTPException(404, f"{event_id} is not on {service}'s dead-letter topic")
    return render(request, "dead_letters/show.html", {"service": service, "row": rows[0]})


ROUTES: list[BaseRoute] = [
    Route("/dead-letters", dead_letters, methods=["GET"], name="dead_letters"),
    Route(
        "/dead-letters/{service:str}/{event_id:str}",
        dead_letter,
        methods=["GET"],
        name="dead_letter",
    ),
]
NAV = [NavLink("/dead-letters", "dead_letters.nav", OPERATOR_ROLES, order=90)]
