"""Training and attendance: the people of a zone, each one's training and attendance, and
(for the person's managers) the forms recording them."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from xiezuo.staffing.v1 import staffing_pb2, training_pb2

from services.console.county.binding import county_reads
from services.console.county.views import (
    ATTENDANCE_STATUSES,
    TRAINING_TYPES,
    attendance_rows,
    quarter_days,
    quarter_of,
    status_counts,
    training_rows,
)
from services.console.grpc_calls import Refused, act, stubs
from services.console.session import SignedIn, signed_in
from services.console.web import NavLink, render, translator

TRAINING_ROLES = frozenset(
    {"county_leadership", "commission_head", "assessor", "zone_chief", "deputy_chief"}
)
# Who records (staffing's rule; it checks again): county leadership for anyone, a zone's
# chief or deputy for the people of their zones.
COUNTY_RECORDERS = frozenset({"county_leadership", "commission_head"})
ZONE_RECORDERS = frozenset({"zone_chief", "deputy_chief"})
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The two forms of a person's page, each with the fields it posts.
FORMS = {
    "training": ("course", "training_type", "hours", "date"),
    "attendance": ("day", "status", "note"),
}
TYPE_CODES = {name: code for code, name in TRAINING_TYPES.items()}
STATUS_CODES = {name: code for code, name in ATTENDANCE_STATUSES.items()}


def may_record(user: SignedIn, person: staffing_pb2.Person) -> bool:
    """Whether staffing would let the user record this person's training and attendance."""
    if person.county_id and person.county_id != user.county_id:
        return False
    if user.has_role(*COUNTY_RECORDERS):
        return True
    if not user.has_role(*ZONE_RECORDERS) or not person.zone_id:
        return False
    return user.all_zones or person.zone_id in user.zone_ids


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


async def _person_page(
    request: Request,
    *,
    form_name: str = "",
    refusal: Refused | None = None,
    denied: str = "",
    posted: Mapping[str, str] | None = None,
) -> Response:
    """One person's page; a refused form comes back as typed with the service's reasons."""
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
    forms: dict[str, dict[str, str]] = {}
    for name, fields in FORMS.items():
        typed = dict(posted or {}) if name == form_name else {}
        form = {field: typed.get(field, "") for field in fields}
        # A retry of a refused form keeps its key: the service records it at most once.
        form["idempotency_key"] = typed.get("idempotency_key") or uuid.uuid4().hex
        forms[name] = form
    status = 200
    if refusal is not None:
        status = refusal.status
    elif denied:
        status = 403
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
            # The forms are offered only where staffing would accept them; it checks again.
            "may_record": may_record(user, found),
            "forms": forms,
            "training_types": tuple(TYPE_CODES),
            "attendance_statuses": tuple(STATUS_CODES),
            "form_name": form_name,
            "refusal": refusal,
            "errors": refusal.violations if refusal is not None else {},
            "denied": denied,
            "recorded": request.query_params.get("recorded", ""),
        },
        status_code=status,
    )


async def person(request: Request) -> Response:
    """One person's training records and attendance over a range (this quarter by default)."""
    return await _person_page(request)


async def _record(request: Request, form_name: str, build: Any, method_of: Any) -> Response:
    """Post one form: checked here for what only the console parses, then sent as the user."""
    posted = {name: str(value).strip() for name, value in (await request.form()).items()}
    t = translator(request)
    violations: dict[str, list[str]] = {}
    message = build(request.path_params["person_id"], posted, violations, t)

    async def again(refusal: Refused | None) -> Response:
        # None: staffing said no (not this person's manager); nothing was recorded.
        denied = "" if refusal is not None else t("training.denied")
        return await _person_page(
            request, form_name=form_name, refusal=refusal, denied=denied, posted=posted
        )

    if violations:
        return await again(Refused(400, t("training.form_refused"), violations))
    person_id = request.path_params["person_id"]
    return await act(
        request,
        method_of(stubs(request).training),
        message,
        done=f"/training/{person_id}?recorded={form_name}",
        again=again,
    )


def _training_request(
    person_id: str, posted: Mapping[str, str], violations: dict[str, list[str]], t: Any
) -> training_pb2.RecordTrainingRequest:
    hours = 0.0
    try:
        hours = float(posted.get("hours", ""))
    except ValueError:
        violations["hours"] = [t("training.not_a_number")]
    return training_pb2.RecordTrainingRequest(
        idempotency_key=posted.get("idempotency_key", ""),
        person_id=person_id,
        course=posted.get("course", ""),
        # An unknown kind goes as unset: staffing names the field.
        training_type=TYPE_CODES.get(posted.get("training_type", ""), 0),  # type: ignore[arg-type]
        hours=hours,
        date=posted.get("date", ""),
    )


def _attendance_request(
    person_id: str, posted: Mapping[str, str], violations: dict[str, list[str]], t: Any
) -> training_pb2.RecordAttendanceRequest:
    return training_pb2.RecordAttendanceRequest(
        idempotency_key=posted.get("idempotency_key", ""),
        person_id=person_id,
        day=posted.get("day", ""),
        status=STATUS_CODES.get(posted.get("status", ""), 0),  # type: ignore[arg-type]
        note=posted.get("note", ""),
    )


async def record_training(request: Request) -> Response:
    """RecordTraining for the person; staffing's reasons shown beside the inputs."""
    return await _record(request, "training", _training_request, lambda s: s.RecordTraining)


async def record_attendance(request: Request) -> Response:
    """RecordAttendance for the person; staffing's reasons shown beside the inputs."""
    return await _record(request, "attendance", _attendance_request, lambda s: s.RecordAttendance)


ROUTES: list[BaseRoute] = [
    Route("/training", people, methods=["GET"], name="training"),
    Route("/training/{person_id:str}", person, methods=["GET"], name="training_person"),
    Route(
        "/training/{person_id:str}/training",
        record_training,
        methods=["POST"],
        name="training_record",
    ),
    Route(
        "/training/{person_id:str}/attendance",
        record_attendance,
        methods=["POST"],
        name="training_attendance",
    ),
]
NAV = [NavLink("/training", "training.nav", TRAINING_ROLES, order=60)]
