"""Training and attendance over real gRPC (SQLite, PostgreSQL): recorded, listed, published."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from sqlmodel import col, select
from xiezuo.staffing.v1 import training_pb2

from services.contracts.staffing import AttendanceRecorded, TrainingRecorded
from services.runtime.db import Database
from services.runtime.messaging_tables import OutboxMessage
from tests.integration import staffing_api
from tests.integration.helpers import count_rows
from tests.integration.staffing_api import Api

api = staffing_api.training_api


def lecture(key: str, day: str, hours: float = 3.5) -> training_pb2.RecordTrainingRequest:
    """A lecture of p-1."""
    return training_pb2.RecordTrainingRequest(
        idempotency_key=key,
        person_id="p-1",
        course="纪检监察业务培训",
        training_type=training_pb2.TRAINING_TYPE_LECTURE,
        hours=hours,
        date=day,
    )


async def payloads(database: Database, event_type: str) -> list[dict[str, Any]]:
    """Payloads of the outbox rows of one event type."""
    async with database.session() as session:
        rows = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.event_type == event_type))
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_training_is_recorded_once_per_key_listed_in_pages_and_published(api: Api) -> None:
    chief = api.as_("chief", "zone_chief")
    first = await api.stub.RecordTraining(lecture("k-1", "2026-03-02"), metadata=chief)
    again = await api.stub.RecordTraining(lecture("k-1", "2026-03-02"), metadata=chief)
    assert first.record.record_id == again.record.record_id
    assert first.record.hours == 3.5
    for index, day in enumerate(("2026-03-03", "2026-03-04")):
        await api.stub.RecordTraining(lecture(f"k-{index + 2}", day), metadata=chief)

    own = api.as_("p-1", "township_member")
    page = await api.stub.ListTraining(
        training_pb2.ListTrainingRequest(person_id="p-1", page_size=2), metadata=own
    )
    rest = await api.stub.ListTraining(
        training_pb2.ListTrainingRequest(
            person_id="p-1", page_size=2, page_token=page.next_page_token
        ),
        metadata=own,
    )
    assert [r.date for r in [*page.records, *rest.records]] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
    ]
    assert rest.next_page_token == ""
    published = await payloads(api.database, TrainingRecorded.event_type)
    assert len(published) == 3
    assert {p["training_type"] for p in published} == {"lecture"}
    assert published[0]["person_id"] == "p-1" and published[0]["hours"] == 3.5


async def test_bad_training_is_refused_with_every_field_and_nothing_stored(api: Api) -> None:
    chief = api.as_("chief", "zone_chief")
    bad = training_pb2.RecordTrainingRequest(
        idempotency_key="k", person_id="p-1", course=" ", hours=30, date="yesterday"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.RecordTraining(bad, metadata=chief)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for field in ("course", "hours", "training_type", "date"):
        assert field in (caught.value.details() or "")
    # The same key for a different request is refused too.
    await api.stub.RecordTraining(lecture("k-x", "2026-03-02"), metadata=chief)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await api.stub.RecordTraining(lecture("k-x", "2026-03-09"), metadata=chief)
    assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(await payloads(api.database, TrainingRecorded.event_type)) == 1


async def test_only_managers_record_and_others_cannot_read(api: Api) -> None:
    member = api.as_("p-1", "township_member")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.RecordTraining(lecture("k", "2026-03-02"), metadata=member)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    other_zone_chief = api.as_("chief-2", "zone_chief", zones=("z-2",))
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.stub.ListTraining(
            training_pb2.ListTrainingRequest(person_id="p-1"), metadata=other_zone_chief
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await api.stub.ListTraining(
            training_pb2.ListTrainingRequest(person_id="inf"),
            metadata=api.as_("chief", "zone_chief"),
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


async def test_attendance_by_day_is_recorded_corrected_and_published(api: Api) -> None:
    chief = api.as_("chief", "zone_chief")

    def day(
        key: str, on: str, status: training_pb2.AttendanceStatus.ValueType
    ) -> training_pb2.RecordAttendanceRequest:
        return training_pb2.RecordAttendanceRequest(
            idempotency_key=key, person_id="p-1", day=on, status=status
        )

    await api.stub.RecordAttendance(
        day("a-1", "2026-03-02", training_pb2.ATTENDANCE_STATUS_PRESENT), metadata=chief
    )
    await api.stub.RecordAttendance(
        day("a-1", "2026-03-02", training_pb2.ATTENDANCE_STATUS_PRESENT), metadata=chief
    )
    await api.stub.RecordAttendance(
        day("a-2", "2026-03-03", training_pb2.ATTENDANCE_STATUS_ABSENT), metadata=chief
    )
    # A correction of the 3rd: the day holds the latest status.
    await api.stub.RecordAttendance(
        day("a-3", "2026-03-03", training_pb2.ATTENDANCE_STATUS_ON_LEAVE), metadata=chief
    )
    listed = await api.stub.ListAttendance(
        training_pb2.ListAttendanceRequest(person_id="p-1", from_day="2026-03-01"),
        metadata=api.as_("p-1", "township_member"),
    )
    assert [(d.day, d.status) for d in listed.days] == [
        ("2026-03-02", training_pb2.ATTENDANCE_STATUS_PRESENT),
        ("2026-03-03", training_pb2.ATTENDANCE_STATUS_ON_LEAVE),
    ]
    published = await payloads(api.database, AttendanceRecorded.event_type)
    assert sorted((p["day"], p["status"]) for p in published) == [
        ("2026-03-02", "present"),
        ("2026-03-03", "absent"),
        ("2026-03-03", "on_leave"),
    ]
    assert (
        await count_rows(
            api.database,
            OutboxMessage,
            col(OutboxMessage.event_type) == AttendanceRecorded.event_type,
        )
        == 3
    )


async def test_a_zone_chief_without_home_township_is_published_under_the_zone_they_lead(
    api: Api,
) -> None:
    # Issue 13: the chief's training went out with zone "" (key `c-tr:`) and became a blank
    # seventh zone in the ranking.
    lead = api.as_("lead", "county_leadership")
    request = training_pb2.RecordTrainingRequest(
        idempotency_key="chief-1",
        person_id="chief",
        course="审查调查实务",
        training_type=training_pb2.TRAINING_TYPE_CASE_STUDY,
        hours=2,
        date="2026-03-05",
    )
    await api.stub.RecordTraining(request, metadata=lead)
    await api.stub.RecordAttendance(
        training_pb2.RecordAttendanceRequest(
            idempotency_key="chief-a",
            person_id="chief",
            day="2026-03-05",
            status=training_pb2.ATTENDANCE_STATUS_IN_TRAINING,
        ),
        metadata=lead,
    )
    async with api.database.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.event_type).in_(
                        [TrainingRecorded.event_type, AttendanceRecorded.event_type]
                    )
                )
            )
        ).all()
    assert len(rows) == 2
    for row in rows:
        assert json.loads(row.payload)["zone_id"] == "z-1", row.event_type
        assert (row.zone_id, row.partition_key) == ("z-1", "c-tr:z-1"), row.event_type
