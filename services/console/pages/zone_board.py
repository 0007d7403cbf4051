"""The zone board: clues and cases by stage, deadlines at risk and breached, each person's
open assignments against the workload cap, and the zone's rank with the score behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from services.console.casework.pagekit import QUARTER, helpers, reads
from services.console.casework.reads import previous_quarter, quarter_of
from services.console.session import signed_in
from services.console.web import NavLink, render
from services.runtime.tokens import ALL_ZONES

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


async def zone_board(request: Request) -> Response:
    """One zone's board for a quarter (default: the last quarter that has ended)."""
    user = signed_in(request)
    zone_id = request.path_params["zone_id"]
    quarters = _quarters(datetime.now(UTC))
    quarter = request.query_params.get("quarter") or quarters[1]
    if not QUARTER.match(quarter):
        raise HTTPException(400, "quarter must look like 2026Q3")
    board = await reads(request).zone_board(
        county_id=user.county_id,
        zone_id=zone_id,
        quarter=quarter,
        stage=request.query_params.get("stage", ""),
    )
    return render(
        request,
        "zone_board/index.html",
        {"board": board, "quarters": quarters, **helpers(request)},
    )


ROUTES: list[BaseRoute] = [
    Route("/zones", zone_choice, name="zone_choice"),
    Route("/zones/{zone_id}/board", zone_board, name="zone_board"),
]
NAV = [NavLink("/zones", "zone_board.nav", BOARD_ROLES, order=20)]
