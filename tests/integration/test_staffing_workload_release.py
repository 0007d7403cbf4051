"""Cases' workflow steps over the real broker release the workload of finished teams."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlmodel import col, select

from services.contracts.base import IntegrationEvent
from services.contracts.cases import CaseClosed, CaseFiled, CaseStepRecorded, TeamRequested
from services.contracts.staffing import WorkloadReleased
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry, OutboxMessage
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.domain.workload import DEFAULT_WORKLOAD_RELEASE
from services.staffing.drawing import TeamDrawer
from services.staffing.handlers.case_progress import CaseProgressHandler
from services.staffing.handlers.team_requested import TeamRequestedHandler
from services.staffing.secrets import CountySecrets
from services.staffing.store.tables import AssignmentRow
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    count_rows,
    create_topics,
    produce,
    running_broker,
    started_producer,
    unique,
    wait_until,
)
from tests.integration.test_staffing_team_draws import loaded_database

pytestmark = pytest.mark.kafka

E = TypeVar("E", bound=IntegrationEvent)
WHEN = datetime(2026, 3, 2, 9, tzinfo=UTC)


def on_topic(event_class: type[E], topic: str) -> type[E]:
    """The event class (same type name, same handler) on a topic private to one test."""
    name = f"{event_class.__name__}On_{topic.replace('-', '_').replace('.', '_')}"
    return type(name, (event_class,), {"topic": topic, "__module__": __name__})


def kafka_record(event: IntegrationEvent, event_id: str) -> tuple[bytes, bytes, Any]:
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


def team_request(event_class: type[TeamRequested], case_id: str, stage: str) -> TeamRequested:
    """A request for a team of two about a subject of township t-1."""
    return event_class(
        county_id="c-it",
        zone_id="z-1",
        request_id=unique(f"req-{stage}"),
        case_id=case_id,
        stage=stage,
        subject_township_id="t-1",
        subject_key="subj-1",
        team_size=2,
        requested_by="case-officer-1",
        requested_at=WHEN,
    )


def step(
    event_class: type[CaseStepRecorded], case_id: str, action: str, from_: str, to: str
) -> CaseStepRecorded:
    """A workflow step of the case as cases publishes it."""
    return event_class(
        county_id="c-it",
        zone_id="z-1",
        case_id=case_id,
        township_id="t-1",
        action=action,
        from_stage=from_,
        to_stage=to,
        actor="head-1",
        rule_version="cn-default-2026.1",
        occurred_at=WHEN,
    )


async def open_by_stage(database: Database, case_id: str) -> dict[str, int]:
    """Open assignments of the case per team stage."""
    async with database.session() as session:
        rows = (
            await session.exec(
                select(AssignmentRow).where(
                    AssignmentRow.case_id == case_id,
                    col(AssignmentRow.state).in_(("drawn", "accepted")),
                )
            )
        ).all()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.stage] = counts.get(row.stage, 0) + 1
    return counts


async def test_filing_and_closure_release_the_teams_once_over_kafka(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await loaded_database(make_database)
    teams_topic, workflow_topic = unique("test.staffing.teams"), unique("test.staffing.workflow")
    await create_topics(kafka.bootstrap_servers, teams_topic, workflow_topic)
    requested = on_topic(TeamRequested, teams_topic)
    filed, closed = on_topic(CaseFiled, workflow_topic), on_topic(CaseClosed, workflow_topic)
    case_id = unique("case")
    drawer = TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES])
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("staffing"),
            database=database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        consumer.on(requested, TeamRequestedHandler(drawer))
        progress = CaseProgressHandler(DEFAULT_WORKLOAD_RELEASE)
        consumer.on(filed, progress)
        consumer.on(closed, progress)

        async def applied(count: int) -> None:
            async def done() -> bool:
                inbox = col(InboxEntry.consumer) == consumer.consumer_name
                return await count_rows(database, InboxEntry, inbox) == count

            await wait_until(done, f"{count} events applied")

        async with running_broker(kafka.bootstrap_servers, consumer):
            await produce(
                kafka.bootstrap_servers,
                teams_topic,
                [kafka_record(team_request(requested, case_id, "verification"), "e-1")],
            )
            await applied(1)
            assert await open_by_stage(database, case_id) == {"verification": 2}

            # 立案: the verification team's work is done; the investigation team is drawn.
            await produce(
                kafka.bootstrap_servers,
                workflow_topic,
                [
                    kafka_record(
                        step(filed, case_id, "approve_filing", "filing_proposed", "investigation"),
                        "e-2",
                    )
                ],
            )
            await applied(2)
            assert await open_by_stage(database, case_id) == {}
            await produce(
                kafka.bootstrap_servers,
                teams_topic,
                [kafka_record(team_request(requested, case_id, "investigation"), "e-3")],
            )
            await applied(3)
            assert await open_by_stage(database, case_id) == {"investigation": 2}

            # Closure, delivered twice under one id and once more under another: released once.
            closure = step(closed, case_id, "approve_decision", "decision_proposed", "closed")
            second_id = str(uuid.uuid4())
            await produce(
                kafka.bootstrap_servers,
                workflow_topic,
                [
                    kafka_record(closure, "e-4"),
                    kafka_record(closure, "e-4"),
                    kafka_record(closure, second_id),
                ],
            )
            await applied(5)

    assert await open_by_stage(database, case_id) == {}
    async with database.session() as session:
        released = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.event_type == WorkloadReleased.event_type)
            )
        ).all()
    assert len(released) == 2
    assert (
        await count_rows(
            database,
            AssignmentRow,
            col(AssignmentRow.case_id) == case_id,
            col(AssignmentRow.state) == "released",
        )
        == 4
    )


async def test_a_new_request_for_the_same_stage_replaces_the_open_team(
    make_database: MakeDatabase,
) -> None:
    database = await loaded_database(make_database)
    drawer = TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES])
    handler = TeamRequestedHandler(drawer)
    case_id = unique("case")
    envelope = Envelope(
        id="e",
        type=TeamRequested.event_type,
        source="xiezuo/cases",
        time=WHEN,
        county_id="c-it",
        zone_id="z-1",
        data=b"{}",
    )
    for _ in range(2):
        async with database.transaction() as session:
            await handler(session, team_request(TeamRequested, case_id, "hearing"), envelope)
    assert await open_by_stage(database, case_id) == {"hearing": 2}
    assert (
        await count_rows(
            database,
            AssignmentRow,
            col(AssignmentRow.case_id) == case_id,
            col(AssignmentRow.state) == "released",
        )
        == 2
    )


def test_the_release_rule_is_versioned_data() -> None:
    rule = DEFAULT_WORKLOAD_RELEASE
    assert rule.version
    assert rule.teams_released("closed") == rule.teams_released("transferred")
    assert {str(s) for s in rule.teams_released("investigation")} == {"verification"}
    assert not rule.teams_released("hearing")
