"""Assessment domain: quarters from event time, fan-out, scoring from rules data, tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.assessment.domain.facts import Fact, increments_of, merged
from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.plan import Target, WorkPlan, plan_problems, progress
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.domain.ranking import Tier, rank_units
from services.assessment.domain.scoring import ComponentKind, score_unit
from services.assessment.domain.scoring_rules import (
    RulesError,
    Tiers,
    load_rules,
    parse_rules,
    rules_in_force,
)

CALENDAR = AssessmentCalendar("Asia/Shanghai")
RULES = load_rules()


def test_quarter_parse_and_print() -> None:
    assert Quarter.parse("2026q3") == Quarter(2026, 3)
    assert str(Quarter(2026, 3)) == "2026Q3"
    assert Quarter(2026, 4).first_day() == date(2026, 10, 1)
    with pytest.raises(ValueError):
        Quarter.parse("2026Q5")


def test_quarter_boundary_is_local_midnight_not_utc() -> None:
    # 2026-06-30 16:30 UTC is 2026-07-01 00:30 in Beijing: already the third quarter.
    assert CALENDAR.quarter_of(datetime(2026, 6, 30, 16, 30, tzinfo=UTC)) == Quarter(2026, 3)
    assert CALENDAR.quarter_of(datetime(2026, 6, 30, 15, 59, tzinfo=UTC)) == Quarter(2026, 2)
    # Naive timestamps are UTC throughout the platform.
    assert CALENDAR.quarter_of(datetime(2026, 12, 31, 17, 0)) == Quarter(2027, 1)


def test_a_fact_fans_out_to_zone_township_and_people() -> None:
    fact = Fact(
        Kpi.TEAM_ASSIGNMENTS,
        datetime(2026, 8, 1, tzinfo=UTC),
        "c1",
        "z1",
        township_id="t1",
        person_ids=("p1", "p2", "p1"),
    )
    rows = {(i.level, i.subject_id, str(i.quarter), i.delta) for i in increments_of(fact, CALENDAR)}
    assert rows == {
        (Level.ZONE, "z1", "2026Q3", 1),
        (Level.TOWNSHIP, "t1", "2026Q3", 1),
        (Level.PERSON, "p1", "2026Q3", 1),
        (Level.PERSON, "p2", "2026Q3", 1),
    }


def test_merged_sums_the_same_row() -> None:
    at = datetime(2026, 8, 1, tzinfo=UTC)
    facts = [
        Fact(Kpi.TEAM_ASSIGNMENTS, at, "c1", "z1", township_id="t1", count_for_zone=False),
        Fact(Kpi.TEAM_ASSIGNMENTS, at, "c1", "z1", township_id="t1", count_for_zone=False),
    ]
    rows = merged([i for fact in facts for i in increments_of(fact, CALENDAR)])
    assert [(r.subject_id, r.delta) for r in rows] == [("t1", 2)]


def test_zone_score_from_known_counts() -> None:
    rules = rules_in_force(RULES, Quarter(2026, 3))
    counts = {
        Kpi.CLUES_DISPOSED.value: 10,  # 10 × 0.5 = 5
        Kpi.TEAMS_REQUESTED.value: 10,
        Kpi.TEAMS_ASSIGNED.value: 8,  # 8/10 × 5 = 4
        Kpi.CASES_FILED.value: 20,  # capped at 8
        Kpi.CASES_SENT_BACK.value: 1,  # −2
        Kpi.TEAMS_UNFILLABLE.value: 9,  # capped at −5
    }
    score = score_unit(rules, Level.ZONE, counts, [Decimal(18), Decimal(15)])
    # 50 + 5 + 8 + 0 + 4 + 0 − 2 − 0 − 5 − 0 = 60; qualitative mean 16.5
    assert score.quantitative == Decimal("60.00")
    assert score.qualitative == Decimal("16.50")
    assert score.total == Decimal("76.50")
    kinds = {(c.kind, c.kpi): c.points for c in score.components}
    assert kinds[(ComponentKind.RATIO, Kpi.TEAMS_ASSIGNED.value)] == Decimal("4.00")
    assert kinds[(ComponentKind.DEDUCTION, Kpi.TEAMS_UNFILLABLE.value)] == Decimal(-5)


def test_score_is_clamped_to_the_quantitative_share() -> None:
    rules = rules_in_force(RULES, Quarter(2026, 1))
    worst = {kpi: 1000 for kpi in rules.levels[Level.ZONE].kpis()} | {
        Kpi.CLUES_DISPOSED.value: 0,
        Kpi.CASES_FILED.value: 0,
        Kpi.RECTIFICATION_CLOSED_IN_TIME.value: 0,
        Kpi.TEAMS_ASSIGNED.value: 0,
        Kpi.REPORTS_FORWARDED_IN_TIME.value: 0,
    }
    assert score_unit(rules, Level.ZONE, worst).quantitative == Decimal("20.00")
    best = {kpi: 1000 for kpi in rules.levels[Level.ZONE].kpis()} | {
        Kpi.CASES_SENT_BACK.value: 0,
        Kpi.DEADLINES_BREACHED.value: 0,
        Kpi.TEAMS_UNFILLABLE.value: 0,
        Kpi.DRAW_OVERRIDES.value: 0,
    }
    assert score_unit(rules, Level.ZONE, best, [Decimal(25)]).total == Decimal("100.00")


def test_person_training_counts_whole_hours() -> None:
    rules = rules_in_force(RULES, Quarter(2026, 2))
    score = score_unit(rules, Level.PERSON, {Kpi.TRAINING_MINUTES.value: 179})
    # 30 base + 2 whole hours × 0.5 (cn-default-2026.2).
    assert score.total == Decimal("31.00")


def test_rules_versions_by_effective_date_and_validation() -> None:
    document = {
        "versions": [
            _version("v1", date(2026, 1, 1), base=50),
            _version("v2", date(2026, 7, 1), base=40),
        ]
    }
    versions = parse_rules(document)
    assert rules_in_force(versions, Quarter(2026, 2)).version == "v1"
    assert rules_in_force(versions, Quarter(2026, 3)).version == "v2"
    with pytest.raises(LookupError):
        rules_in_force(versions, Quarter(2025, 4))
    with pytest.raises(RulesError, match="exceed"):
        parse_rules({"versions": [_version("bad", date(2026, 1, 1), base=79, cap=5)]})
    with pytest.raises(RulesError, match="equal total_points"):
        parse_rules(
            {"versions": [_version("bad", date(2026, 1, 1), base=1) | {"total_points": 90}]}
        )


def _version(name: str, effective: date, *, base: int, cap: int = 10) -> dict[str, object]:
    return {
        "version": name,
        "effective_from": effective,
        "total_points": 100,
        "quantitative_points": 80,
        "qualitative_points": 20,
        "tiers": {"top": 1, "bottom": 1},
        "levels": {
            "zone": {
                "base": base,
                "bonuses": [{"kpi": "cases_filed", "points_each": 1, "cap": cap}],
            }
        },
    }


def test_tiers_top_two_bottom_two() -> None:
    totals = {f"z{i}": Decimal(60 + i) for i in range(1, 7)}
    ranked = rank_units(totals, Tiers(top=2, bottom=2))
    assert [(r.subject_id, r.rank, r.tier) for r in ranked] == [
        ("z6", 1, Tier.TOP),
        ("z5", 2, Tier.TOP),
        ("z4", 3, Tier.MIDDLE),
        ("z3", 4, Tier.MIDDLE),
        ("z2", 5, Tier.BOTTOM),
        ("z1", 6, Tier.BOTTOM),
    ]


def test_a_tie_at_a_tier_edge_keeps_everyone_tied_on_the_list() -> None:
    totals = {
        "a": Decimal(90),
        "b": Decimal(80),
        "c": Decimal(80),
        "d": Decimal(70),
        "e": Decimal(60),
    }
    ranked = {r.subject_id: (r.rank, r.tier) for r in rank_units(totals, Tiers(top=2, bottom=2))}
    assert ranked == {
        "a": (1, Tier.TOP),
        "b": (2, Tier.TOP),
        "c": (2, Tier.TOP),
        "d": (4, Tier.BOTTOM),
        "e": (5, Tier.BOTTOM),
    }


def test_too_few_units_prefers_the_top_list() -> None:
    ranked = rank_units({"a": Decimal(1), "b": Decimal(2), "c": Decimal(3)}, Tiers(2, 2))
    assert [(r.subject_id, r.tier) for r in ranked] == [
        ("c", Tier.TOP),
        ("b", Tier.TOP),
        ("a", Tier.BOTTOM),
    ]


def test_work_plan_validation_and_progress() -> None:
    plan = WorkPlan(
        "c1",
        2026,
        {1: "training"},
        (
            Target(3, "z1", "cases_filed", 10),
            Target(3, "z1", "cases_filed", 5),
            Target(5, "", "nonsense", 0),
        ),
    )
    problems = dict(plan_problems(plan, {k.value for k in Kpi}))
    assert set(problems) == {
        "targets[1]",
        "targets[2].quarter",
        "targets[2].zone_id",
        "targets[2].kpi",
        "targets[2].target",
    }
    done = progress(Target(3, "z1", "cases_filed", 8), 6)
    assert (done.percent, done.met) == (Decimal("75.0"), False)
