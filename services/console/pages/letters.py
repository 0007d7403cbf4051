"""Cross-county letters (协查函): the county's letters on either side, and one letter, as the
collaboration service lets the user see them; for county leadership, the forms approving a
drafted letter (ApproveLetter) and accepting or declining a received one (DecideLetter)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from xiezuo.collaboration.v1 import collaboration_pb2

from services.console.county.binding import county_reads
from services.console.county.views import (
    DIRECTIONS,
    LETTER_KINDS,
    LETTER_STATES,
    display_name,
    letter_rows,
    when,
)
from services.console.grpc_calls import Refused, act, stubs
from services.console.session import signed_in
from services.console.web import NavLink, render, translator

LETTER_ROLES = frozenset(
    {"county_leadership", "commission_head", "zone_chief", "deputy_chief", "city_commission"}
)
# Who approves, accepts and declines (collaboration's rule; it checks again).
LETTER_LEADERSHIP = frozenset({"county_leadership", "commission_head"})
GROUND_MAX = 2000


async def letters(request: Request) -> Response:
    """The county's letters on one side: asked by us (outbound) or asked of us (inbound)."""
    user = signed_in(request)
    direction = request.query_params.get("direction", "outbound")
    if direction not in DIRECTIONS:
        raise HTTPException(404, f"no direction {direction!r}")
    reads = county_reads(request)
    counties, listed = await asyncio.gather(
        reads.county_names(), reads.letters(user.county_id, DIRECTIONS[direction])
    )
    return render(
        request,
        "letters/letters.html",
        {
            "direction": direction,
            "directions": tuple(DIRECTIONS),
            "rows": letter_rows(listed.items, counties),
            "truncated": listed.truncated,
        },
    )


async def _letter_page(
    request: Request,
    *,
    action: str = "",
    refusal: Refused | None = None,
    denied: str = "",
    posted: Mapping[str, str] | None = None,
) -> Response:
    """One letter; a refused action comes back with the service's reasons beside its inputs."""
    user = signed_in(request)
    reads = county_reads(request)
    found = await reads.letter(request.path_params["letter_id"])
    counties, zones, people = await asyncio.gather(
        reads.county_names(),
        reads.zone_names(user.county_id) if found.zone_id else asyncio.sleep(0, {}),
        reads.person_names(list(found.team_person_ids)),
    )
    inbound = found.direction == collaboration_pb2.LETTER_DIRECTION_INBOUND
    leadership = user.has_role(*LETTER_LEADERSHIP)
    typed = dict(posted or {})
    status = refusal.status if refusal is not None else (403 if denied else 200)
    return render(
        request,
        "letters/letter.html",
        {
            # Offered where collaboration would take them; it checks the role and state again.
            "may_approve": leadership
            and not inbound
            and found.state == collaboration_pb2.LETTER_STATE_AWAITING_APPROVAL,
            "may_decide": leadership
            and inbound
            and found.state == collaboration_pb2.LETTER_STATE_RECEIVED,
            # A retry of a refused action keeps its key: the service acts at most once.
            "idempotency_key": typed.get("idempotency_key") or uuid.uuid4().hex,
            "form": typed,
            "action": action,
            "refusal": refusal,
            "errors": refusal.violations if refusal is not None else {},
            "denied": denied,
            "done": request.query_params.get("done", ""),
            "letter": found,
            "direction": "inbound" if inbound else "outbound",
            "counterpart": display_name(found.counterpart_county_id, counties),
            "kind": LETTER_KINDS.get(found.kind, "other"),
            "state": LETTER_STATES.get(found.state, ""),
            "zone_name": zones.get(found.zone_id, "") if found.zone_id else "",
            "fields": sorted(found.fields.items()),
            "team": [(pid, people.get(pid, pid)) for pid in found.team_person_ids],
            "dates": {
                "requested": when(found.requested_at),
                "approved": when(found.approved_at),
                "decided": when(found.decided_at),
                "answered": when(found.answered_at),
            },
        },
        status_code=status,
    )


async def letter(request: Request) -> Response:
    """One letter with its question, answer and the team drawn for it."""
    return await _letter_page(request)


async def _act(request: Request, action: str, method: str, message: object) -> Response:
    """Send one action as the user; a refusal re-renders the letter with its reasons."""
    posted = {name: str(value).strip() for name, value in (await request.form()).items()}
    letter_id = request.path_params["letter_id"]

    async def again(refusal: Refused | None) -> Response:
        denied = "" if refusal is not None else translator(request)("letters.denied")
        return await _letter_page(
            request, action=action, refusal=refusal, denied=denied, posted=posted
        )

    return await act(
        request,
        getattr(stubs(request).collaboration, method),
        message,
        done=f"/letters/{quote(letter_id)}?done={action}",
        again=again,
    )


async def approve(request: Request) -> Response:
    """ApproveLetter: leadership signs a drafted letter and it is sent."""
    form = await request.form()
    message = collaboration_pb2.ApproveLetterRequest(
        idempotency_key=str(form.get("idempotency_key", "")),
        letter_id=request.path_params["letter_id"],
    )
    return await _act(request, "approve", "ApproveLetter", message)


async def decide(request: Request) -> Response:
    """DecideLetter: leadership of the asked county accepts, or declines with a ground."""
    form = await request.form()
    decision = str(form.get("decision", ""))
    if decision not in ("accept", "decline"):
        raise HTTPException(400, "decision must be accept or decline")
    accept = decision == "accept"
    message = collaboration_pb2.DecideLetterRequest(
        idempotency_key=str(form.get("idempotency_key", "")),
        letter_id=request.path_params["letter_id"],
        accept=accept,
        ground="" if accept else str(form.get("ground", "")).strip()[:GROUND_MAX],
        subject_township_id=str(form.get("subject_township_id", "")).strip() if accept else "",
    )
    return await _act(request, decision, "DecideLetter", message)


ROUTES: list[BaseRoute] = [
    Route("/letters", letters, methods=["GET"], name="letters"),
    Route("/letters/{letter_id:str}", letter, methods=["GET"], name="letter"),
    Route("/letters/{letter_id:str}/approve", approve, methods=["POST"], name="letter_approve"),
    Route("/letters/{letter_id:str}/decide", decide, methods=["POST"], name="letter_decide"),
]
NAV = [NavLink("/letters", "letters.nav", LETTER_ROLES, order=70)]
