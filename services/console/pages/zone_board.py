"""The zone board: clues and cases by stage, deadlines at risk and breached, each person's
open assignments against the workload cap, and the zone's rank with the score behind it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from xiezuo.cases.v1 import cases_pb2

from services.console.casework.pagekit import QUARTER, helpers, reads
from services.console.casework.reads import previous_quarter, quarter_of
from services.console.grpc_calls import Refused, call, stubs
from services.console.session import signed_in
from services.console.web import NavLink, render
from services.runtime.tokens import ALL_ZONES

# Who is offered the verification of a rectification item (cases' policy decides).
VERIFIERS = ("zone_chief", "deputy_chief", "county_leadership", "commission_head")
# Who sees a zone's board (each service still decides what of it they may read).
BOARD_ROLES = frozenset(
    {"zone_chief", "deputy_chief", "county_leadership", "commission_head", "assessor"}
)


def _quarters(now: datetime) -> list[str]:
    """The current quarter and the four before it, newest first."""
    found = [quarter_of(now)]
    for _ in range(4):
        found.append(previous_quarter(found[-1]))
    return found


async def zone_choice(request: Request) -> Response:
    """The user's own zone's board, or a choice of zones for county-level users."""
    user = signed_in(request)
    own = [zone for zone in user.zone_ids if zone != ALL_ZONES]
    if len(own) == 1:
        return RedirectResponse(f"/zones/{quote(own[0], safe='')}/board", status_code=303)
    zones = await reads(request).zones(user.county_id)
    if own:
        zones = [zone for zone in zones if zone.zone_id in own]
    return render(request, "zone_board/choose.html", {"zones": zones})


async def _board(
    request: Request,
    zone_id: str,
    quarter: str,
    *,
    stage: str = "",
    status_code: int = 200,
    item_errors: dict[str, dict[str, list[str]]] | None = None,
) -> Response:
    user = signed_in(request)
    quarters = _quarters(datetime.now(UTC))
    quarter = quarter or quarters[1]
    if not QUARTER.match(quarter):
        raise HTTPException(400, "quarter must look like 2026Q3")
    board = await reads(request).zone_board(
        county_id=user.county_id, zone_id=zone_id, quarter=quarter, stage=stage
    )
    context = {
        "board": board,
        "quarters": quarters,
        "may_verify": user.has_role(*VERIFIERS),
        # A key per form, made now: submitting the same page twice records once.
        "keys": {
            item.item_id + kind: uuid.uuid4().hex
            for item in board.open_items
            for kind in ("progress", "verify")
        },
        "item_errors": item_errors or {},
        **helpers(request),
    }
    return render(request, "zone_board/index.html", context, status_code=status_code)


async def zone_board(request: Request) -> Response:
    """One zone's board for a quarter (default: the last quarter that has ended)."""
    return await _board(
        request,
        request.path_params["zone_id"],
        request.query_params.get("quarter", ""),
        stage=request.query_params.get("stage", ""),
    )


async def follow_up(request: Request) -> Response:
    """A progress report or a verification of one rectification item, then back to the board."""
    signed_in(request)
    zone_id, item_id = request.path_params["zone_id"], request.path_params["item_id"]
    form = await request.form()
    quarter = str(form.get("quarter") or "")
    key = str(form.get("idempotency_key") or "") or uuid.uuid4().hex
    note = str(form.get("note") or "").strip()
    cases = stubs(request).cases
    try:
        if form.get("kind") == "verify":
            await call(
                request,
                cases.VerifyRectification,
                cases_pb2.VerifyRectificationRequest(
                    idempotency_key=key, item_id=item_id, done=form.get("done") == "yes", note=note
                ),
            )
        else:
            raw = str(form.get("percent_done") or "").strip()
            await call(
                request,
                cases.ReportRectificationProgress,
                cases_pb2.ReportRectificationProgressRequest(
                    idempotency_key=key,
                    item_id=item_id,
                    note=note,
                    percent_done=int(raw) if raw.isdigit() else -1,
                ),
            )
    except Refused as refused:
        errors: dict[str, list[str]] = {}
        for path, messages in refused.violations.items():
            errors.setdefault(path if path in ("note", "percent_done") else "", []).extend(messages)
        if not refused.violations:
            errors[""] = [refused.message]
        return await _board(
            request,
            zone_id,
            quarter,
            status_code=refused.status,
            item_errors={item_id: errors},
        )
    target = f"/zones/{quote(zone_id, safe='')}/board?quarter={quote(quarter)}#rectification"
    return RedirectResponse(target, status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/zones", zone_choice, name="zone_choice"),
    Route("/zones/{zone_id}/board", zone_board, name="zone_board"),
    Route(
        "/zones/{zone_id}/rectification/{item_id}",
        follow_up,
        methods=["POST"],
        name="zone_rectification",
    ),
]
NAV = [NavLink("/zones", "zone_board.nav", BOARD_ROLES, order=20)]
