"""Assessment projection through the real inbox on SQLite and PostgreSQL: counts, redelivery,
late and out-of-order events, explanations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.domain.ranking import Tier
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.store.projection import projection_rows
from services.assessment.store.scorecards import Scoring
from services.contracts.base import IntegrationEvent
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.staffing import (
    AttendanceRecorded,
    TeamAssigned,
    TeamMember,
    TeamUnfillable,
    TownshipPlaced,
)
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer, Outcome
from services.runtime.localstack import KafkaNode
from tests.conftest import MakeDatabase
from tests.integration.helpers import record_of, started_producer, unique

pytestmark = pytest.mark.kafka

COUNTY = "c-test"


def clue(event_at: datetime, *, zone: str = "z1", township: str = "t1") -> ClueRegistered:
    """A clue about `township` registered at `event_at`."""
    return ClueRegistered(
        county_id=COUNTY,
        zone_id=zone,
        clue_id=unique("clue"),
        report_id=unique("report"),
        township_id=township,
        channel="letter",
        allegation_categories=["misuse-of-funds"],
        subject=ReportedSubject(
            name="某某", post="主任", unit="某村", township_id=township, cadre_level="village"
        ),
        real_name=False,
        received_at=event_at,
        registered_at=event_at,
    )


def envelope(event: IntegrationEvent, ce_time: datetime, event_id: str | None = None) -> Envelope:
    """The CloudEvent an outbox would publish, sent at `ce_time`."""
    return Envelope(
        id=event_id or unique("evt"),
        type=event.event_type,
        source="xiezuo/test",
        time=ce_time,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
    )


async def test_events_count_once_in_the_quarter_of_their_own_time(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("assessment")
    scoring = Scoring(load_rules())
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        register_handlers(consumer, AssessmentCalendar(), projections())
        q2_late = envelope(
            clue(datetime(2026, 6, 30, 10, tzinfo=UTC)), datetime(2026, 8, 2, tzinfo=UTC)
        )
        q3 = envelope(clue(datetime(2026, 7, 3, tzinfo=UTC)), datetime(2026, 7, 3, tzinfo=UTC))
        assigned = TeamAssigned(
            county_id=COUNTY,
            zone_id="z1",
            request_id="r1",
            case_id="k1",
            stage="investigation",
            draw_id="d1",
            members=[
                TeamMember(person_id="p1", home_township_id="t2", leader=True),
                TeamMember(person_id="p2", home_township_id="t2"),
            ],
            assigned_at=datetime(2026, 7, 10, tzinfo=UTC),
        )
        team = envelope(assigned, datetime(2026, 7, 10, tzinfo=UTC))
        unfillable = envelope(
            TeamUnfillable(
                county_id=COUNTY,
                zone_id="z2",
                request_id="r2",
                case_id="k2",
                stage="hearing",
                draw_id="d2",
                reasons=["nobody eligible"],
                decided_at=datetime(2026, 8, 1, tzinfo=UTC),
            ),
            datetime(2026, 8, 1, tzinfo=UTC),
        )
        placed = envelope(
            TownshipPlaced(
                county_id=COUNTY,
                zone_id="z3",
                township_id="t9",
                township_name="九乡",
                effective_from=date(2026, 1, 1),
            ),
            datetime(2026, 1, 1, tzinfo=UTC),
        )
        # Out of order: the Q3 events arrive before the late Q2 one; one record twice.
        outcomes = [
            await consumer.consume(record_of(item, topic="t", offset=offset))
            for offset, item in enumerate([q3, team, team, unfillable, q2_late, placed])
        ]
        assert outcomes.count(Outcome.DUPLICATE) == 1

        async with database.session() as session:
            q3_zone = await scoring.scorecard(
                session,
                county_id=COUNTY,
                level=Level.ZONE,
                subject_id="z1",
                quarter=Quarter(2026, 3),
            )
            q2_zone = await scoring.scorecard(
                session,
                county_id=COUNTY,
                level=Level.ZONE,
                subject_id="z1",
                quarter=Quarter(2026, 2),
            )
            township = await scoring.scorecard(
                session,
                county_id=COUNTY,
                level=Level.TOWNSHIP,
                subject_id="t2",
                quarter=Quarter(2026, 3),
            )
            person = await scoring.explain(
                session,
                county_id=COUNTY,
                level=Level.PERSON,
                subject_id="p1",
                quarter=Quarter(2026, 3),
                events_per_kpi=10,
            )
            ranking = await scoring.ranking(
                session, county_id=COUNTY, level=Level.ZONE, quarter=Quarter(2026, 3)
            )
            townships = await scoring.ranking(
                session, county_id=COUNTY, level=Level.TOWNSHIP, quarter=Quarter(2026, 3)
            )
            rows = await projection_rows(session)

    assert q3_zone.counts == {Kpi.CLUES_RECEIVED: 1, Kpi.TEAMS_ASSIGNED: 1}
    assert q2_zone.counts == {Kpi.CLUES_RECEIVED: 1}
    # Both members come from t2: one event counts two postings for the township.
    assert township.counts == {Kpi.TEAM_ASSIGNMENTS: 2}
    assert township.score.total == Decimal("61.00")
    # A posting is counted, but only a finished stage earns a staff member points (2026.2).
    assert person.scorecard.score.total == Decimal("30.00")
    assert person.events == {Kpi.TEAM_ASSIGNMENTS: [team.id]}
    # z2 lost a point for the unfillable team; z1 and z2 are the only zones with Q3 rows.
    assert [(u.subject_id, u.total, u.tier) for u in ranking.units] == [
        ("z1", Decimal("50.00"), Tier.TOP),
        ("z2", Decimal("49.00"), Tier.TOP),
    ]
    # t9 was placed by the registry and is ranked although nothing happened there.
    assert {u.subject_id for u in townships.units} == {"t1", "t2", "t9"}
    # The draw is kept once in the team ledger (counted when read, in its request's quarter;
    # its request was not consumed here, so in the draw's own quarter).
    teams = [row for row in rows if row[0] == "team" and row[2] == team.id]
    assert [row[-1] for row in teams] == ["p1@t2* p2@t2"]


async def test_a_later_attendance_record_corrects_the_day(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("assessment")
    scoring = Scoring(load_rules())

    def attendance(status: str, recorded_at: datetime) -> AttendanceRecorded:
        return AttendanceRecorded(
            county_id=COUNTY,
            zone_id="z1",
            person_id="p7",
            day=date(2026, 7, 6),
            status=status,
            recorded_by="clerk",
            recorded_at=recorded_at,
        )

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        register_handlers(consumer, AssessmentCalendar(), projections())
        sequence = [
            attendance("present", datetime(2026, 7, 6, 9, tzinfo=UTC)),
            # Older than the record in force: it arrives late and changes nothing.
            attendance("absent", datetime(2026, 7, 6, 8, tzinfo=UTC)),
            attendance("on_leave", datetime(2026, 7, 7, 9, tzinfo=UTC)),
            attendance("in_training", datetime(2026, 7, 8, 9, tzinfo=UTC)),
        ]
        counts = []
        for offset, event in enumerate(sequence):
            item = envelope(event, event.recorded_at)
            await consumer.consume(record_of(item, topic="t", offset=offset))
            async with database.session() as session:
                card = await scoring.scorecard(
                    session,
                    county_id=COUNTY,
                    level=Level.PERSON,
                    subject_id="p7",
                    quarter=Quarter(2026, 3),
                )
            counts.append(card.counts.get(Kpi.ATTENDANCE_DAYS, 0))
    assert counts == [1, 1, 0, 1]
