"""The four forms and the staff score from a real projection (SQLite, PostgreSQL), in any order.

One person's two cases, a transfer with 双开, a changed appeal and a staff team's finished
stage go through the same handlers the consumer runs; the counts are the same whichever order
the topics were consumed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.ledgers import ledgers
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import ProjectionHandler
from services.assessment.store.scorecards import Scoring
from services.contracts.base import IntegrationEvent
from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseTransferred,
    DeadlineBreached,
    StageChanged,
    TeamRequested,
)
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.staffing import TeamAssigned, TeamMember
from services.runtime.envelope import Envelope
from tests.conftest import MakeDatabase

COUNTY = "c-ff"
AT = datetime(2026, 4, 6, 9, tzinfo=UTC)


def _clue(case_id: str, name: str, zone: str = "z1") -> ClueRegistered:
    return ClueRegistered(
        county_id=COUNTY,
        zone_id=zone,
        clue_id=case_id,
        report_id=f"r-{case_id}",
        township_id="t1",
        channel="letter",
        allegation_categories=["funds"],
        subject=ReportedSubject(
            name=name, post="村主任", unit="某村委会", township_id="t1", cadre_level="village"
        ),
        real_name=False,
        received_at=AT,
        registered_at=AT,
    )


def _step(
    cls: type[StageChanged] | type[CaseDecided] | type[CaseTransferred] | type[CaseClosed],
    case_id: str,
    action: str,
    stages: tuple[str, str],
    days: int,
    zone: str = "z1",
    **detail: object,
) -> IntegrationEvent:
    return cls(
        county_id=COUNTY,
        zone_id=zone,
        case_id=case_id,
        township_id="t1",
        action=action,
        from_stage=stages[0],
        to_stage=stages[1],
        actor="x",
        rule_version="r",
        occurred_at=AT + timedelta(days=days),
        detail=detail,
    )


def _events() -> list[IntegrationEvent]:
    party = [{"track": "party", "kind": "warning", "effect_months": 12}]
    expelled = [
        {"track": "party", "kind": "expulsion", "effect_months": 0},
        {"track": "government", "kind": "expulsion", "effect_months": 0},
    ]
    decided = ("decision_proposed", "decided")
    return [
        # 张三's two cases: criticised after a letter of inquiry, then sanctioned (form 2).
        _clue("k1", "张三"),
        _clue("k2", "张三"),
        _step(
            CaseClosed, "k1", "record_inquiry_outcome", ("inquiry", "closed"), 1, choice="criticism"
        ),
        _step(
            CaseDecided,
            "k2",
            "approve_decision",
            decided,
            5,
            decision="party_sanction",
            sanctions=party,
        ),
        # 李四: transferred with 双开 in z2 (form 4).
        _clue("k3", "李四", zone="z2"),
        _step(
            CaseTransferred,
            "k3",
            "approve_decision",
            ("decision_proposed", "transferred"),
            6,
            zone="z2",
            decision="transfer",
            sanctions=expelled,
        ),
        # 王五: removed from office (form 3), changed on appeal next quarter to a warning (2).
        _clue("k4", "王五"),
        _step(
            CaseDecided,
            "k4",
            "approve_decision",
            decided,
            7,
            decision="education",
            organisational_measures=["removal_from_office"],
        ),
        _step(
            StageChanged,
            "k4",
            "decide_appeal",
            ("appeal_first_review", "decided"),
            95,
            choice="changed",
            previous_decision="education",
            decision="party_sanction",
            sanctions=party,
        ),
        # k2's investigation team: a (leader) and b finish; b's second case k5 finishes late.
        TeamRequested(
            county_id=COUNTY,
            zone_id="z1",
            request_id="k2:investigation:3",
            case_id="k2",
            stage="investigation",
            subject_township_id="t1",
            subject_key="s",
            team_size=2,
            requested_by="x",
            requested_at=AT - timedelta(days=30),
        ),
        TeamAssigned(
            county_id=COUNTY,
            zone_id="z1",
            request_id="k2:investigation:3",
            case_id="k2",
            stage="investigation",
            draw_id="d1",
            members=[
                TeamMember(person_id="a", home_township_id="t2", leader=True),
                TeamMember(person_id="b", home_township_id="t3"),
            ],
            assigned_at=datetime(2026, 12, 1, tzinfo=UTC),
        ),
        _step(
            StageChanged,
            "k2",
            "submit_investigation_report",
            ("investigation", "hearing_pending"),
            2,
        ),
        TeamRequested(
            county_id=COUNTY,
            zone_id="z1",
            request_id="k5:investigation:3",
            case_id="k5",
            stage="investigation",
            subject_township_id="t1",
            subject_key="s",
            team_size=1,
            requested_by="x",
            requested_at=AT - timedelta(days=100),
        ),
        TeamAssigned(
            county_id=COUNTY,
            zone_id="z1",
            request_id="k5:investigation:3",
            case_id="k5",
            stage="investigation",
            draw_id="d2",
            members=[TeamMember(person_id="b", home_township_id="t3")],
            assigned_at=datetime(2026, 12, 1, tzinfo=UTC),
        ),
        DeadlineBreached(
            county_id=COUNTY,
            zone_id="z1",
            deadline_id="dl-5",
            case_id="k5",
            kind="investigation",
            due_at=AT - timedelta(days=10),
            rule_version="r",
        ),
        _step(
            StageChanged,
            "k5",
            "submit_investigation_report",
            ("investigation", "hearing_pending"),
            3,
        ),
    ]


async def _apply(database: object, events: list[IntegrationEvent]) -> None:
    calendar = AssessmentCalendar()
    by_type = {p.event_class.event_type: p.mapper for p in projections()}
    extra = ledgers(calendar)
    async with database.transaction() as session:  # type: ignore[attr-defined]
        for index, event in enumerate(events):
            envelope = Envelope(
                f"e{index:02d}", event.event_type, "t", AT, COUNTY, event.zone_id, b"{}"
            )
            handler = ProjectionHandler(
                by_type[event.event_type], calendar, extra.get(event.event_type, ())
            )
            await handler(session, event, envelope)


async def _read(database: object) -> tuple[dict[str, dict[str, int]], ...]:
    scoring = Scoring(load_rules())
    q2 = Quarter(2026, 2)
    async with database.transaction() as session:  # type: ignore[attr-defined]
        zones = await scoring.ranking(session, county_id=COUNTY, level=Level.ZONE, quarter=q2)
        townships = await scoring.ranking(
            session, county_id=COUNTY, level=Level.TOWNSHIP, quarter=q2
        )
        people = await scoring.ranking(session, county_id=COUNTY, level=Level.PERSON, quarter=q2)
        later = await scoring.ranking(
            session, county_id=COUNTY, level=Level.ZONE, quarter=Quarter(2026, 3)
        )
    totals = {unit.subject_id: {"total": int(unit.total * 100)} for unit in people.units}
    return zones.counts, townships.counts, people.counts, later.counts, totals


def _forms(counts: dict[str, int]) -> list[int]:
    return [counts.get(f"four_forms.{form}", 0) for form in (1, 2, 3, 4)]


async def test_people_in_the_four_forms_and_staff_work_in_any_order(
    make_database: MakeDatabase,
) -> None:
    events = _events()
    forward, backward = await make_database("assessment"), await make_database("assessment")
    await _apply(forward, events)
    await _apply(backward, list(reversed(events)))
    read = await _read(forward)
    assert read == await _read(backward)
    zones, townships, people, later, totals = read
    # z1: 张三 once, in form 2 (not also form 1); 王五 in form 2 after the appeal.
    assert _forms(zones["z1"]) == [0, 2, 0, 0] and zones["z1"]["four_forms"] == 2
    assert _forms(zones["z2"]) == [0, 0, 0, 1]
    assert zones["z2"]["people_sanctioned"] == 1
    assert _forms(townships["t1"]) == [0, 2, 0, 1]
    # The appeal corrected Q2: Q3 counts nobody in the forms.
    assert all(_forms(counts) == [0, 0, 0, 0] for counts in later.values())
    assert later["z1"]["appeals_changed"] == 1
    # a led k2's investigation; b finished k2 on time and k5 late.
    assert people["a"]["stages_led"] == 1 and people["a"]["stages_completed_in_time"] == 1
    assert people["b"]["stages_completed.investigation"] == 2
    assert people["b"]["stages_late"] == 1
    assert Decimal(totals["a"]["total"]) / 100 == Decimal("41.00")  # 30 + 3 + 1 + 7
    assert Decimal(totals["b"]["total"]) / 100 == Decimal("37.50")  # 30 + 6 + 3.5 − 2


async def test_a_back_entered_team_counts_in_the_quarter_of_its_request(
    make_database: MakeDatabase,
) -> None:
    # The step that asked for the team is dated in Q2; staffing drew it in December.
    requested = TeamRequested(
        county_id=COUNTY,
        zone_id="z1",
        request_id="k9:verification:2",
        case_id="k9",
        stage="verification",
        subject_township_id="t1",
        subject_key="s",
        team_size=2,
        requested_by="x",
        requested_at=AT,
    )
    drawn = [
        TeamAssigned(
            county_id=COUNTY,
            zone_id="z1",
            request_id="k9:verification:2",
            case_id="k9",
            stage="verification",
            draw_id=f"d{round_}",
            members=[
                TeamMember(person_id=first, home_township_id="t2"),
                TeamMember(person_id="c", home_township_id="t2"),
            ],
            assigned_at=datetime(2026, 12, 1, round_, tzinfo=UTC),
        )
        # A redraw (a member declined) replaces the team: the latest draw holds the postings.
        for round_, first in ((1, "a"), (2, "b"))
    ]
    scoring = Scoring(load_rules())
    for order in ([requested, *drawn], [*reversed(drawn), requested]):
        database = await make_database("assessment")
        await _apply(database, order)
        async with database.transaction() as session:
            counts = {
                (level, quarter): (
                    await scoring.ranking(
                        session, county_id=COUNTY, level=level, quarter=Quarter(2026, quarter)
                    )
                ).counts
                for level in Level
                for quarter in (2, 4)
            }
        assert counts[(Level.ZONE, 2)]["z1"] == {"teams_requested": 1, "teams_assigned": 1}
        assert counts[(Level.TOWNSHIP, 2)]["t2"] == {"team_assignments": 2}
        assert set(counts[(Level.PERSON, 2)]) == {"b", "c"}
        assert all(not counts[(level, 4)] for level in Level)
