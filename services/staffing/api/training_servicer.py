"""gRPC face of staff training and attendance records."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import grpc
from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.staffing.v1 import training_pb2, training_pb2_grpc

from services.contracts.staffing import AttendanceRecorded, TrainingRecorded
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, NotFound
from services.runtime.outbox import record_event
from services.runtime.tokens import Principal
from services.staffing.api import convert, fields, paging, policy
from services.staffing.domain.training import (
    AttendanceStatus,
    TrainingType,
    tenths,
    training_problems,
)
from services.staffing.store import idempotency, registry, training
from services.staffing.store.records_tables import AttendanceRow, TrainingRow
from services.staffing.store.tables import PersonRow

SOURCE = "xiezuo/staffing"

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

TYPES = {
    training_pb2.TRAINING_TYPE_LECTURE: TrainingType.LECTURE,
    training_pb2.TRAINING_TYPE_CASE_STUDY: TrainingType.CASE_STUDY,
    training_pb2.TRAINING_TYPE_DRILL: TrainingType.DRILL,
    training_pb2.TRAINING_TYPE_STUDY_VISIT: TrainingType.STUDY_VISIT,
}
STATUSES = {
    training_pb2.ATTENDANCE_STATUS_PRESENT: AttendanceStatus.PRESENT,
    training_pb2.ATTENDANCE_STATUS_ABSENT: AttendanceStatus.ABSENT,
    training_pb2.ATTENDANCE_STATUS_ON_LEAVE: AttendanceStatus.ON_LEAVE,
    training_pb2.ATTENDANCE_STATUS_ON_ASSIGNMENT: AttendanceStatus.ON_ASSIGNMENT,
    training_pb2.ATTENDANCE_STATUS_IN_TRAINING: AttendanceStatus.IN_TRAINING,
}
TYPE_NUMBERS = {value: key for key, value in TYPES.items()}
STATUS_NUMBERS = {value: key for key, value in STATUSES.items()}


def training_message(row: TrainingRow) -> training_pb2.TrainingRecord:
    """A training row as its message."""
    return training_pb2.TrainingRecord(
        record_id=row.record_id,
        person_id=row.person_id,
        county_id=row.county_id,
        zone_id=row.zone_id or "",
        course=row.course,
        training_type=TYPE_NUMBERS[TrainingType(row.training_type)],
        hours=row.hours_tenths / 10,
        date=row.on_date.isoformat(),
        recorded_by=row.recorded_by,
        recorded_at=convert.timestamp(row.recorded_at),
    )


def attendance_message(row: AttendanceRow) -> training_pb2.AttendanceDay:
    """An attendance row as its message."""
    return training_pb2.AttendanceDay(
        person_id=row.person_id,
        day=row.day.isoformat(),
        status=STATUS_NUMBERS[AttendanceStatus(row.status)],
        note=row.note,
        recorded_by=row.recorded_by,
        recorded_at=convert.timestamp(row.recorded_at),
    )


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    """Training and attendance records, published for assessment."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def _person(self, session: AsyncSession, person_id: str) -> PersonRow:
        row = await registry.get_person(session, person_id)
        # Informants are not staff: they have no training or attendance here.
        if row is None or row.informant:
            raise NotFound("person", person_id)
        return row

    async def _recordable_person(
        self, session: AsyncSession, principal: Principal, person_id: str
    ) -> PersonRow:
        person = await self._person(session, person_id)
        policy.authorize_record_staff_records(
            principal,
            county_id=person.county_id,
            zone_id=person.zone_id,
            person_id=person.person_id,
        )
        return person

    async def _readable_person(
        self, session: AsyncSession, person_id: str, action: str
    ) -> PersonRow:
        # Reading a person's records is audited in the same transaction as the read.
        principal = current_principal()
        person = await self._person(session, person_id)
        policy.authorize_read_staff_records(
            principal,
            county_id=person.county_id,
            zone_id=person.zone_id,
            person_id=person.person_id,
        )
        await audit.append(
            session,
            county_id=person.county_id,
            actor=principal.subject,
            action=action,
            record_type="person",
            record_id=person.person_id,
        )
        return person

    async def RecordTraining(
        self, request: training_pb2.RecordTrainingRequest, context: Context
    ) -> training_pb2.RecordTrainingResponse:
        """Record one day of training (idempotent by key) and publish it."""
        violations = fields.missing(
            idempotency_key=request.idempotency_key,
            person_id=request.person_id,
        )
        violations += [
            FieldViolation(f, p) for f, p in training_problems(request.course, request.hours)
        ]
        kind = TYPES.get(request.training_type)
        if kind is None:
            violations.append(FieldViolation("training_type", "must be set"))
        on = fields.day(request.date, "date", violations)
        if violations:
            raise InvalidArgument(violations)
        assert kind is not None and on is not None
        principal = current_principal()
        course = request.course.strip()
        request_print = idempotency.fingerprint(
            {
                "person": request.person_id,
                "course": course,
                "type": kind.value,
                "hours": tenths(request.hours),
                "date": on.isoformat(),
            }
        )
        async with self._db.transaction() as session:
            person = await self._recordable_person(session, principal, request.person_id)
            earlier = await _earlier(
                session, principal, "RecordTraining", request.idempotency_key, request_print
            )
            if earlier is not None:
                row = await session.get(TrainingRow, earlier)
                assert row is not None
                return training_pb2.RecordTrainingResponse(record=training_message(row))
            now = datetime.now(UTC)
            row = TrainingRow(
                record_id=str(uuid.uuid4()),
                county_id=person.county_id,
                zone_id=person.zone_id,
                person_id=person.person_id,
                course=course,
                training_type=kind.value,
                hours_tenths=tenths(request.hours),
                on_date=on,
                recorded_by=principal.subject,
                recorded_at=now,
            )
            session.add(row)
            idempotency.remember(
                session,
                subject=principal.subject,
                call="RecordTraining",
                key=request.idempotency_key,
                request_print=request_print,
                result_id=row.record_id,
                at=now,
            )
            await audit.append(
                session,
                county_id=person.county_id,
                actor=principal.subject,
                action="training.recorded",
                record_type="person",
                record_id=person.person_id,
                detail={"record_id": row.record_id, "type": kind.value},
                at=now,
            )
            record_event(
                session,
                TrainingRecorded(
                    county_id=person.county_id,
                    # Never empty: an empty zone would key the record `<county>:` and count
                    # as a zone of its own in assessment.
                    zone_id=await registry.event_zone_of(session, person),
                    record_id=row.record_id,
                    person_id=person.person_id,
                    course=course,
                    training_type=kind.value,
                    hours=row.hours_tenths / 10,
                    on_date=on,
                    recorded_by=principal.subject,
                    recorded_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
            return training_pb2.RecordTrainingResponse(record=training_message(row))

    async def ListTraining(
        self, request: training_pb2.ListTrainingRequest, context: Context
    ) -> training_pb2.ListTrainingResponse:
        """A page of a person's training records."""
        violations = fields.missing(person_id=request.person_id)
        scope = (request.person_id, "training")
        limit = paging.page_size(request.page_size, violations)
        after = paging.page_cursor(request.page_token, scope, violations, _training_cursor)
        if violations:
            raise InvalidArgument(violations)
        async with self._db.transaction() as session:
            person = await self._readable_person(session, request.person_id, "training.read")
            rows = await training.training_page(
                session, person.person_id, after=after, limit=limit + 1
            )
        rows, token = paging.next_page(
            rows, limit, scope, lambda row: f"{row.on_date.isoformat()}|{row.record_id}"
        )
        return training_pb2.ListTrainingResponse(
            records=[training_message(row) for row in rows], next_page_token=token
        )

    async def RecordAttendance(
        self, request: training_pb2.RecordAttendanceRequest, context: Context
    ) -> training_pb2.RecordAttendanceResponse:
        """Record or correct a day's attendance (idempotent by key) and publish it."""
        violations = fields.missing(
            idempotency_key=request.idempotency_key,
            person_id=request.person_id,
        )
        status = STATUSES.get(request.status)
        if status is None:
            violations.append(FieldViolation("status", "must be set"))
        day = fields.day(request.day, "day", violations)
        if len(request.note) > 1000:
            violations.append(FieldViolation("note", "is longer than 1000 characters"))
        if violations:
            raise InvalidArgument(violations)
        assert status is not None and day is not None
        principal = current_principal()
        request_print = idempotency.fingerprint(
            {
                "person": request.person_id,
                "day": day.isoformat(),
                "status": status.value,
                "note": request.note,
            }
        )
        async with self._db.transaction() as session:
            person = await self._recordable_person(session, principal, request.person_id)
            row = await session.get(AttendanceRow, (person.person_id, day))
            earlier = await _earlier(
                session, principal, "RecordAttendance", request.idempotency_key, request_print
            )
            if earlier is not None and row is not None:
                return training_pb2.RecordAttendanceResponse(attendance=attendance_message(row))
            now = datetime.now(UTC)
            if row is None:
                row = AttendanceRow(
                    person_id=person.person_id,
                    day=day,
                    county_id=person.county_id,
                    zone_id=person.zone_id,
                    status=status.value,
                    note=request.note,
                    recorded_by=principal.subject,
                    recorded_at=now,
                )
            else:
                row.status, row.note = status.value, request.note
                row.recorded_by, row.recorded_at = principal.subject, now
            session.add(row)
            idempotency.remember(
                session,
                subject=principal.subject,
                call="RecordAttendance",
                key=request.idempotency_key,
                request_print=request_print,
                result_id=f"{person.person_id}|{day.isoformat()}",
                at=now,
            )
            await audit.append(
                session,
                county_id=person.county_id,
                actor=principal.subject,
                action="attendance.recorded",
                record_type="person",
                record_id=person.person_id,
                detail={"day": day.isoformat(), "status": status.value},
                at=now,
            )
            record_event(
                session,
                AttendanceRecorded(
                    county_id=person.county_id,
                    zone_id=await registry.event_zone_of(session, person),
                    person_id=person.person_id,
                    day=day,
                    status=status.value,
                    recorded_by=principal.subject,
                    recorded_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
            return training_pb2.RecordAttendanceResponse(attendance=attendance_message(row))

    async def ListAttendance(
        self, request: training_pb2.ListAttendanceRequest, context: Context
    ) -> training_pb2.ListAttendanceResponse:
        """A page of a person's attendance days."""
        violations = fields.missing(person_id=request.person_id)
        first = fields.day(request.from_day, "from_day", violations) if request.from_day else None
        last = fields.day(request.to_day, "to_day", violations) if request.to_day else None
        if first and last and last < first:
            violations.append(FieldViolation("to_day", "is before from_day"))
        limit = paging.page_size(request.page_size, violations)
        scope = (request.person_id, f"attendance|{request.from_day}|{request.to_day}")
        after = paging.page_cursor(request.page_token, scope, violations, date.fromisoformat)
        if violations:
            raise InvalidArgument(violations)
        async with self._db.transaction() as session:
            person = await self._readable_person(session, request.person_id, "attendance.read")
            rows = await training.attendance_page(
                session, person.person_id, first=first, last=last, after=after, limit=limit + 1
            )
        rows, token = paging.next_page(rows, limit, scope, lambda row: row.day.isoformat())
        return training_pb2.ListAttendanceResponse(
            days=[attendance_message(row) for row in rows], next_page_token=token
        )


async def _earlier(
    session: AsyncSession, principal: Principal, call: str, key: str, request_print: str
) -> str | None:
    try:
        return await idempotency.earlier_result(
            session, subject=principal.subject, call=call, key=key, request_print=request_print
        )
    except idempotency.KeyReused as exc:
        raise InvalidArgument([FieldViolation("idempotency_key", str(exc))]) from exc


def _training_cursor(cursor: str) -> tuple[date, str]:
    day, record_id = cursor.split("|", 1)
    return date.fromisoformat(day), record_id
