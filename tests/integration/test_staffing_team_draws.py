"""TeamRequested over the real broker → one recorded draw → TeamAssigned (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlmodel import col, select

from services.contracts.cases import TeamRequested
from services.contracts.staffing import TeamAssigned
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry, OutboxMessage
from services.runtime.outbox import OutboxRelay
from services.staffing.domain.county_file import parse_county
from services.staffing.domain.draw import replay
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.drawing import TeamDrawer
from services.staffing.handlers.team_requested import TeamRequestedHandler
from services.staffing.secrets import CountySecrets
from services.staffing.store.draws import record_of
from services.staffing.store.registry import import_county
from services.staffing.store.tables import AssignmentRow, DrawRow
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    WAIT_SECONDS,
    count_rows,
    create_topics,
    produce,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka

COUNTY = """
county: {county_id: c-it, name: 测试县}
skills: [law, finance_audit]
zones:
  - zone_id: z-1
    name: 第一协作区
    townships:
      - {township_id: t-1, name: 甲镇, effective_from: 2026-01-01}
      - {township_id: t-2, name: 乙镇, effective_from: 2026-01-01}
      - {township_id: t-3, name: 丙镇, effective_from: 2026-01-01}
people:
  - {person_id: p-1, name: 甲一, roles: [township_member], home_township: t-1}
  - {person_id: p-2, name: 乙一, roles: [township_member], home_township: t-2, skills: [law]}
  - {person_id: p-3, name: 乙二, roles: [supervision_staff], home_township: t-2}
  - {person_id: p-4, name: 丙一, roles: [township_secretary], home_township: t-3}
  - {person_id: p-5, name: 丙二, roles: [supervision_staff], home_township: t-3,
     skills: [finance_audit]}
"""


def team_requested_class(topic: str) -> type[TeamRequested]:
    """TeamRequested (same type name, same handler) on a topic private to one test."""
    return type(
        f"TeamRequestedOn_{topic.replace('-', '_').replace('.', '_')}",
        (TeamRequested,),
        {"topic": topic, "__module__": __name__},
    )


def kafka_record(
    event: TeamRequested, event_id: str
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The record cases' relay would publish."""
    envelope = Envelope(
        id=event_id,
        type=event.event_type,
        source="xiezuo/cases",
        time=datetime.now(UTC),
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
        subject=event.subject_id(),
    )
    return (event.partition_key().encode(), envelope.data, envelope.headers())


async def team_assigned_for(
    bootstrap: str, request_id: str, *, settle: float
) -> list[dict[str, Any]]:
    """TeamAssigned payloads on the draws topic for one request (waits, then settles)."""
    consumer = AIOKafkaConsumer(
        TeamAssigned.topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    headers = dict(record.headers or ())
                    if headers.get("ce_type") != TeamAssigned.event_type.encode():
                        continue
                    payload = json.loads(record.value or b"{}")
                    if payload.get("request_id") == request_id:
                        found.append(payload)
            if found and settle_until is None:
                settle_until = time.monotonic() + settle
    finally:
        await consumer.stop()
    return found


async def loaded_database(make_database: MakeDatabase) -> Database:
    """A migrated staffing database holding the small test county."""
    database = await make_database("staffing")
    async with database.transaction() as session:
        await import_county(session, parse_county(COUNTY), actor="test")
    return database


async def test_team_requested_is_drawn_once_and_assigned_over_kafka(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await loaded_database(make_database)
    topic = unique("test.staffing.teams")
    await create_topics(kafka.bootstrap_servers, topic, TeamAssigned.topic)
    event_class = team_requested_class(topic)
    drawer = TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES])
    request_id = unique("req")
    event = event_class(
        county_id="c-it",
        zone_id="z-1",
        request_id=request_id,
        case_id=unique("case"),
        stage="investigation",
        subject_township_id="t-1",
        subject_key="subj-1",
        team_size=2,
        required_skills=["law"],
        requested_by="case-officer-1",
        requested_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
    )
    first_id = str(uuid.uuid4())
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("staffing"),
            database=database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        consumer.on(event_class, TeamRequestedHandler(drawer))
        relay = OutboxRelay(database, producer, idle_poll_seconds=0.2)
        relay_task = asyncio.create_task(relay.run())
        try:
            async with running_broker(kafka.bootstrap_servers, consumer):
                # The same event twice (a redelivery) and the same request under a new event
                # id (cases re-sending): one draw.
                await produce(
                    kafka.bootstrap_servers,
                    topic,
                    [
                        kafka_record(event, first_id),
                        kafka_record(event, first_id),
                        kafka_record(event, str(uuid.uuid4())),
                    ],
                )

                async def both_applied() -> bool:
                    return (
                        await count_rows(
                            database, InboxEntry, col(InboxEntry.consumer) == consumer.consumer_name
                        )
                        == 2
                    )

                await wait_until(both_applied, "both distinct event ids to be applied")
                assigned = await team_assigned_for(kafka.bootstrap_servers, request_id, settle=1.0)
        finally:
            await relay.stop()
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task

    assert len(assigned) == 1
    members = assigned[0]["members"]
    assert len(members) == 2
    # 异地办案: nobody from the subject's township; the team covers the required skill.
    assert all(member["home_township_id"] != "t-1" for member in members)
    assert "p-2" in {member["person_id"] for member in members}
    assert await count_rows(database, DrawRow, col(DrawRow.request_id) == request_id) == 1
    assert (
        await count_rows(database, AssignmentRow, col(AssignmentRow.request_id) == request_id) == 2
    )
    assert (
        await count_rows(
            database, OutboxMessage, col(OutboxMessage.event_type) == TeamAssigned.event_type
        )
        == 1
    )
    async with database.session() as session:
        row = (await session.exec(select(DrawRow).where(DrawRow.request_id == request_id))).one()
    record = record_of(row)
    assert replay(record).matches
    assert {e.person_id for e in record.exclusions} == {"p-1"}
