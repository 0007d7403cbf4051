"""Training and attendance: the people of a zone, and each one's training and attendance."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.console.county.binding import county_reads
from services.console.county.views import (
    attendance_rows,
    quarter_days,
    quarter_of,
    status_counts,
    training_rows,
)
from services.console.session import signed_in
from services.console.web import NavLink, render

TRAINING_ROLES = frozenset(
    {"county_leadership", "commission_head", "assessor", "zone_chief", "deputy_chief"}
)
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


async def people(request: Request) -> Response:
    """The people the user may list, by zone, each linked to their training and attendance."""
    user = signed_in(request)
    zone = request.query_params.get("zone", "")
    reads = county_reads(request)
    names, listed = await asyncio.gather(
        reads.zone_names(user.county_id), reads.people(user.county_id, zone)
    )
    return render(
        request,
        "training/people.html",
        {
            "zone": zone,
            "zone_names": names,
            # Village informants are not staff: they neither train nor attend here.
            "people": [p for p in listed.items if "village_informant" not in p.roles],
            "truncated": listed.truncated,
        },
    )


async def person(request: Request) -> Response:
    """One person's training records and attendance over a range (this quarter by default)."""
    user = signed_in(request)
    person_id = request.path_params["person_id"]
    first, last = quarter_days(quarter_of(datetime.now(UTC).date()))
    from_day = request.query_params.get("from", "")
    to_day = request.query_params.get("to", "")
    from_day = from_day if DAY.match(from_day) else first
    to_day = to_day if DAY.match(to_day) else last
    reads = county_reads(request)
    found = await reads.person(person_id)
    names, records, days = await asyncio.gather(
        reads.zone_names(user.county_id),
        reads.training(person_id),
        reads.attendance(person_id, from_day, to_day),
    )
    training = training_rows(records.items)
    attendance = attendance_rows(days.items)
    recorders = await reads.person_names(sorted({row.recorded_by for row in training}))
    return render(
        request,
        "training/person.html",
        {
            "person": found,
            "zone_name": names.get(found.zone_id, found.zone_id),
            "records": training,
            "recorders": recorders,
            "total_hours": sum(row.hours for row in training),
            "days": attendance,
            "status_counts": status_counts(attendance),
            "from_day": from_day,
            "to_day": to_day,
        },
    )


ROUTES: list[BaseRoute] = [
    Route("/training", people, methods=["GET"], name="training"),
    Route("/training/{person_id:str}", person, methods=["GET"], name="training_person"),
]
NAV = [NavLink("/training", "training.nav", TRAINING_ROLES, order=60)]
