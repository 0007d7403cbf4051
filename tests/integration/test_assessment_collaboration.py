"""Help between counties through the real broker and inbox (SQLite, PostgreSQL): real
collaboration events, built with the contracts' classes, published forward and reversed give
the same letter ledger, KPIs and zone score; a redelivered record counts once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col

from services.assessment.domain.collaboration import CollaborationSummary
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.projection import register_handlers
from services.assessment.report.build import build_report, build_year_report
from services.assessment.report.render import render_html
from services.assessment.store.collaboration import collaboration_summary
from services.assessment.store.projection import projection_rows
from services.assessment.store.scorecards import Scoring
from services.contracts.base import IntegrationEvent
from services.contracts.collaboration import (
    AssistanceAnswered,
    LetterAnswered,
    LetterOverdue,
    LetterSent,
)
from services.contracts.staffing import AttendanceRecorded, TownshipPlaced
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    count_rows,
    create_topics,
    produce,
    record_of,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka

ASKING, ASKED = "c-qingyuan", "c-nanyang"
Q1, Q2 = Quarter(2027, 1), Quarter(2027, 2)
MARKER = "MARKER-李四-440101"
CLASSES: tuple[type[IntegrationEvent], ...] = (
    LetterSent,
    LetterAnswered,
    AssistanceAnswered,
    LetterOverdue,
)


def at(month: int, day: int) -> datetime:
    """A working morning in 2027 (09:00 in Shanghai)."""
    return datetime(2027, month, day, 1, tzinfo=UTC)


def letter(
    letter_id: str,
    asker: str,
    asked: str,
    zone: str,
    approved: datetime,
    answered: datetime | None,
) -> list[IntegrationEvent]:
    """A letter sent, and answered if `answered`: what both counties' collaboration publish."""
    events: list[IntegrationEvent] = [
        LetterSent(
            county_id=asked,
            from_county=asker,
            letter_id=letter_id,
            network_version=1,
            kind="verify_fact",
            allowlist_version=1,
            question=f"Is {MARKER} employed there?",
            fields={"subject_name": MARKER},
            due_date=date(2027, 12, 31),
            approved_at=approved,
        )
    ]
    if answered is not None:
        events.append(
            LetterAnswered(
                county_id=asker,
                from_county=asked,
                letter_id=letter_id,
                network_version=1,
                findings=f"{MARKER} works at the bureau",
                answered_at=answered,
            )
        )
        events.append(
            AssistanceAnswered(
                county_id=asker,
                zone_id=zone,
                case_id=f"case-{MARKER}",
                letter_id=letter_id,
                answered_by_county=asked,
                kind="verify_fact",
                findings=f"{MARKER} works at the bureau",
                attachments=0,
                answered_at=answered,
            )
        )
    return events


def overdue(letter_id: str, zone: str, due: date) -> list[IntegrationEvent]:
    """Both sides' breach of a letter's due date."""
    common: dict[str, Any] = {"letter_id": letter_id, "kind": "verify_fact", "due_date": due}
    return [
        LetterOverdue(
            county_id=ASKING,
            zone_id=zone,
            direction="outbound",
            counterpart_county=ASKED,
            **common,
        ),
        LetterOverdue(
            county_id=ASKED, zone_id="*", direction="inbound", counterpart_county=ASKING, **common
        ),
    ]


def year() -> list[IntegrationEvent]:
    """Four letters from Qingyuan (one overdue, one answered next quarter) and one to it."""
    return [
        *letter("L1", ASKING, ASKED, "z-1", at(1, 5), at(1, 12)),  # 7 days
        *letter("L2", ASKING, ASKED, "z-1", at(2, 1), at(2, 4)),  # 3 days
        *letter("L3", ASKING, ASKED, "z-2", at(2, 10), None),
        *overdue("L3", "z-2", date(2027, 2, 17)),
        *letter("L5", ASKING, ASKED, "z-2", at(3, 28), at(4, 2)),  # sent Q1, answered Q2
        *letter("L4", ASKED, ASKING, "z-nanyang-1", at(3, 1), at(3, 20)),  # help given
    ]


def private(event_class: type[IntegrationEvent], topics: dict[str, str]) -> type[IntegrationEvent]:
    """The same contract on a topic private to one run."""
    topic = topics.setdefault(event_class.topic, unique("assessment-collab"))
    return type(
        f"{event_class.__name__}Private", (event_class,), {"topic": topic, "__module__": __name__}
    )


def record(event: IntegrationEvent, event_id: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The CloudEvent collaboration's outbox would publish, keyed as the contract says."""
    envelope = envelope_of(event, event_id)
    return event.partition_key().encode(), envelope.data, envelope.headers()


Outcome = tuple[
    list[tuple[object, ...]],
    dict[str, dict[str, CollaborationSummary]],
    dict[str, int],
    dict[str, list[str]],
    Decimal,
]


async def consume(
    make_database: MakeDatabase, kafka: KafkaNode, numbered: list[tuple[str, IntegrationEvent]]
) -> Outcome:
    """Publish `numbered` in its order (the first again, redelivered) and consume it."""
    topics: dict[str, str] = {}
    classes = [private(cls, topics) for cls in CLASSES]
    # The registry and attendance topics too, so this run reads nothing of other tests.
    placed = private(TownshipPlaced, topics)
    attendance = private(AttendanceRecorded, topics)
    assert issubclass(placed, TownshipPlaced) and issubclass(attendance, AttendanceRecorded)
    await create_topics(kafka.bootstrap_servers, *topics.values())
    by_topic: dict[str, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = {}
    for event_id, event in [*numbered, numbered[0]]:
        by_topic.setdefault(topics[event.topic], []).append(record(event, event_id))
    for topic, records in by_topic.items():
        await produce(kafka.bootstrap_servers, topic, records)

    database = await make_database("assessment")
    ids = [event_id for event_id, _ in numbered]
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        register_handlers(
            consumer,
            AssessmentCalendar(),
            [],
            placed,
            attendance_class=attendance,
            collaboration_classes=classes,
        )
        async with running_broker(kafka.bootstrap_servers, consumer):

            async def applied() -> bool:
                where = col(InboxEntry.event_id).in_(ids)
                return await count_rows(database, InboxEntry, where) == len(ids)

            await wait_until(applied, f"{len(ids)} letter events applied")
    scoring = Scoring(load_rules())
    async with database.session() as session:
        rows = [row for row in await projection_rows(session) if row[0] == "letter"]
        summaries = {
            f"{county}/{quarter}": await collaboration_summary(
                session, county_id=county, quarter=quarter
            )
            for county in (ASKING, ASKED)
            for quarter in (Q1, Q2)
        }
        zone = await scoring.explain(
            session,
            county_id=ASKING,
            level=Level.ZONE,
            subject_id="z-1",
            quarter=Q1,
            events_per_kpi=10,
        )
    return rows, summaries, zone.scorecard.counts, zone.events, zone.scorecard.score.total


async def test_help_given_and_received_counts_the_same_forward_and_reversed(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    numbered = [(f"collab-{i:02d}", event) for i, event in enumerate(year())]
    forward = await consume(make_database, kafka, numbered)
    backward = await consume(make_database, kafka, list(reversed(numbered)))
    assert backward == forward

    rows, summaries, counts, events, total = forward
    # Only ids, zone, kind and moments are kept: no question, fields, findings or case id.
    assert MARKER not in repr(rows)
    assert len(rows) == 2 * 5  # each letter has an asking row and an asked row

    asking = summaries[f"{ASKING}/{Q1}"]
    county = asking["*"]
    assert county.letters_sent == 4
    assert county.letters_answered_for_us == 2
    assert county.letters_answered_by_us == 1
    assert county.letters_overdue == 0
    assert county.letters_overdue_for_us == 1
    assert (county.mean_days_to_answer, county.median_days_to_answer) == (5.0, 5.0)
    assert asking["z-1"].letters_answered_for_us == 2
    assert asking["z-2"].letters_overdue_for_us == 1
    # L5 was sent in Q1 and answered in Q2 after 5 days: it counts its answer there.
    later = summaries[f"{ASKING}/{Q2}"]["*"]
    assert (later.letters_sent, later.letters_answered_for_us) == (0, 1)
    assert later.mean_days_to_answer == 5.0

    helper = summaries[f"{ASKED}/{Q1}"]["*"]
    assert helper.letters_sent == 1
    assert helper.letters_answered_by_us == 2  # L1, L2 (L5 was answered in Q2)
    assert helper.letters_overdue == 1
    assert helper.letters_answered_for_us == 1
    assert helper.mean_days_to_answer == 19.0

    # The zone's help received is weighed by cn-default-2027.3: 2 × 0.5 points.
    assert counts["letters_answered_for_us"] == 2
    assert events["letters_answered_for_us"] == ["collab-02", "collab-05"]
    assert total == Decimal("39.00")


async def ledger_in_order(
    make_database: MakeDatabase, kafka: KafkaNode, numbered: list[tuple[str, IntegrationEvent]]
) -> tuple[list[tuple[object, ...]], dict[str, CollaborationSummary], str]:
    """Apply `numbered` through the inbox in exactly this order (the broker cannot promise an
    order across the letters and answers topics)."""
    database = await make_database("assessment")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        register_handlers(consumer, AssessmentCalendar(), [])
        for offset, (event_id, event) in enumerate(numbered):
            await consumer.consume(
                record_of(envelope_of(event, event_id), topic=event.topic, offset=offset)
            )
    async with database.session() as session:
        rows = [row for row in await projection_rows(session) if row[0] == "letter"]
        report = await build_report(session, Scoring(load_rules()), county_id=ASKING, quarter=Q1)
        summary = await collaboration_summary(session, county_id=ASKING, quarter=Q1)
        # The year's report adds the quarters up (L5, sent in Q1, was answered in Q2).
        year_report = await build_year_report(
            session, Scoring(load_rules()), county_id=ASKING, year=Q1.year
        )
        county = year_report.help["*"]
        assert (county.letters_sent, county.letters_answered_for_us) == (4, 3)
        assert "Help between counties" in render_html(year_report)
        return rows, summary, render_html(report)


def envelope_of(event: IntegrationEvent, event_id: str) -> Envelope:
    """The CloudEvent collaboration's outbox would publish."""
    return Envelope(
        id=event_id,
        type=event.event_type,
        source="xiezuo/collaboration/test",
        time=at(1, 1),
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
    )


async def test_the_ledger_does_not_depend_on_which_event_of_a_letter_comes_first(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    numbered = [(f"collab-{i:02d}", event) for i, event in enumerate(year())]
    forward = await ledger_in_order(make_database, kafka, numbered)
    backward = await ledger_in_order(make_database, kafka, list(reversed(numbered)))
    assert backward == forward
    rows, summary, html = forward
    # The answer names the case's zone; the letter sent (zone `*`) never takes it away.
    zones = {row[2]: row[4] for row in rows if row[1] == ASKING and row[3] == "asking"}
    assert zones == {"L1": "z-1", "L2": "z-1", "L3": "z-2", "L5": "z-2"}
    assert summary["z-1"].letters_answered_for_us == 2
    # The quarter's report shows the county line and each zone's, with the days to answer.
    assert "Help between counties" in html
    assert "<tr><td>county</td><td>4</td><td>2</td><td>1</td><td>0</td><td>1</td>" in html
    assert "<td>5.0</td><td>5.0</td></tr>" in html
    assert MARKER not in html
