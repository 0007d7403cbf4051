"""Cross-county letters (协查函): the county's letters on either side, and one letter, as the
collaboration service lets the user see them."""

from __future__ import annotations

import asyncio

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
from services.console.session import signed_in
from services.console.web import NavLink, render

LETTER_ROLES = frozenset(
    {"county_leadership", "commission_head", "zone_chief", "deputy_chief", "city_commission"}
)


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


async def letter(request: Request) -> Response:
    """One letter with its question, answer and the team drawn for it."""
    user = signed_in(request)
    reads = county_reads(request)
    found = await reads.letter(request.path_params["letter_id"])
    counties, zones, people = await asyncio.gather(
        reads.county_names(),
        reads.zone_names(user.county_id) if found.zone_id else asyncio.sleep(0, {}),
        reads.person_names(list(found.team_person_ids)),
    )
    inbound = found.direction == collaboration_pb2.LETTER_DIRECTION_INBOUND
    return render(
        request,
        "letters/letter.html",
        {
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
    )


ROUTES: list[BaseRoute] = [
    Route("/letters", letters, methods=["GET"], name="letters"),
    Route("/letters/{letter_id:str}", letter, methods=["GET"], name="letter"),
]
NAV = [NavLink("/letters", "letters.nav", LETTER_ROLES, order=70)]
