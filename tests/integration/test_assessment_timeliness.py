"""Disposal and investigation within the limit through the real inbox: the same counts,
rows and score whichever of the step and the breach is consumed first."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.store.projection import projection_rows
from services.assessment.store.scorecards import Scoring
from services.contracts.cases import CaseStepRecorded, ClueDisposed, DeadlineBreached, StageChanged
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from tests.conftest import MakeDatabase
from tests.integration.helpers import record_of, started_producer, unique
from tests.integration.test_assessment_projection import envelope

pytestmark = pytest.mark.kafka

COUNTY = "c-limits"
Q1 = Quarter(2027, 1)


def step(
    kind: type[CaseStepRecorded], case_id: str, at: datetime, from_stage: str, to_stage: str
) -> CaseStepRecorded:
    """A workflow step of `case_id` in zone z1, township t1."""
    return kind(
        county_id=COUNTY,
        zone_id="z1",
        case_id=case_id,
        township_id="t1",
        action="approve_disposal" if kind is ClueDisposed else "hand_over",
        from_stage=from_stage,
        to_stage=to_stage,
        actor="p-head",
        rule_version="cn-default-2027.1",
        occurred_at=at,
        detail={"way": "preliminary_verification"} if kind is ClueDisposed else {},
    )


def breach(case_id: str, kind: str, due: datetime, record_type: str = "case") -> DeadlineBreached:
    """cases' breach of the `kind` limit of `case_id`."""
    return DeadlineBreached(
        county_id=COUNTY,
        zone_id="z1",
        deadline_id=f"deadline-{case_id}-{kind}-{record_type}",
        case_id=case_id,
        kind=kind,
        due_at=due,
        rule_version="cn-default-2027.1",
        record_type=record_type,  # type: ignore[arg-type]
    )


def day(month: int, number: int) -> datetime:
    """A morning in 2027."""
    return datetime(2027, month, number, 9, tzinfo=UTC)


def sequence() -> list[Envelope]:
    """Four disposals (two late), two investigations (one late), unrelated breaches."""
    events = [
        step(ClueDisposed, "clue-a", day(1, 20), "registered", "disposed"),
        step(ClueDisposed, "clue-b", day(2, 20), "registered", "disposed"),
        breach("clue-b", "disposal", day(2, 1)),
        step(ClueDisposed, "clue-c", day(3, 2), "registered", "disposed"),
        # Due after the disposal: another clock run, not this disposal's.
        breach("clue-c", "disposal", day(3, 20)),
        step(ClueDisposed, "clue-d", day(3, 5), "registered", "disposed"),
        breach("clue-d", "disposal", day(3, 1)),
        step(StageChanged, "case-e", day(2, 10), "investigation", "hearing_pending"),
        breach("case-e", "investigation", day(2, 1)),
        step(StageChanged, "case-f", day(2, 12), "investigation", "hearing_pending"),
        # Neither judged: a hearing limit, and a rectification item's limit.
        breach("case-f", "hearing", day(1, 5)),
        breach("clue-a", "disposal", day(1, 5), record_type="rectification"),
        # A step that stays in the investigation does not finish it.
        step(StageChanged, "case-g", day(2, 12), "investigation", "investigation"),
    ]
    return [
        envelope(event, event_at(event), event_id=f"evt-{i:02d}") for i, event in enumerate(events)
    ]


def event_at(event: CaseStepRecorded | DeadlineBreached) -> datetime:
    """The CloudEvent time: when the step happened or the limit passed."""
    return event.occurred_at if isinstance(event, CaseStepRecorded) else event.due_at


async def consume(
    make_database: MakeDatabase, kafka: KafkaNode, ordered: list[Envelope]
) -> tuple[dict[str, int], dict[str, int], dict[str, list[str]], Decimal, list[tuple[object, ...]]]:
    """Consume `ordered` (one redelivered) into a fresh database; zone/township counts, …"""
    database = await make_database("assessment")
    scoring = Scoring(load_rules())
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        register_handlers(consumer, AssessmentCalendar(), projections())
        for offset, item in enumerate([*ordered, ordered[0]]):
            await consumer.consume(record_of(item, topic="t", offset=offset))
    async with database.session() as session:
        zone = await scoring.explain(
            session,
            county_id=COUNTY,
            level=Level.ZONE,
            subject_id="z1",
            quarter=Q1,
            events_per_kpi=10,
        )
        township = await scoring.scorecard(
            session, county_id=COUNTY, level=Level.TOWNSHIP, subject_id="t1", quarter=Q1
        )
        rows = await projection_rows(session)
    return zone.scorecard.counts, township.counts, zone.events, zone.scorecard.score.total, rows


async def test_within_limit_counts_do_not_depend_on_arrival_order(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    in_order = await consume(make_database, kafka, sequence())
    # Breaches first, steps last, each group backwards.
    reordered = sorted(sequence(), key=lambda item: (item.type.endswith("breached.v1"), item.id))
    backwards = await consume(make_database, kafka, list(reversed(reordered)))
    assert backwards == in_order

    zone_counts, township_counts, events, total, _rows = in_order
    assert zone_counts[Kpi.CLUES_DISPOSED] == 4
    assert zone_counts[Kpi.CLUES_DISPOSED_IN_TIME] == 2
    assert zone_counts[Kpi.INVESTIGATIONS_FINISHED] == 2
    assert zone_counts[Kpi.INVESTIGATIONS_FINISHED_IN_TIME] == 1
    assert township_counts[Kpi.CLUES_DISPOSED_IN_TIME] == 2
    assert events[Kpi.CLUES_DISPOSED_IN_TIME] == ["evt-00", "evt-03"]
    assert events[Kpi.INVESTIGATIONS_FINISHED_IN_TIME] == ["evt-09"]
    # cn-default-2027.3 zone: base 38 + 4 disposals × 0.5 + disposal ratio 2/4 × 5
    # + investigation ratio 1/2 × 5 − 6 deadlines breached (every kind counts there).
    assert zone_counts[Kpi.DEADLINES_BREACHED] == 6
    assert total == Decimal("39.00")
