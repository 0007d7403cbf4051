"""The staff score: different work gives different scores, equal work ties, ties share a rank."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.ranking import rank_units
from services.assessment.domain.scoring import score_unit
from services.assessment.domain.scoring_rules import load_rules, rules_in_force
from services.assessment.domain.staff_work import (
    APPEAL_CHANGED,
    SENT_BACK,
    Team,
    WorkStep,
    stage_ended,
    work_counts,
)

RULES = rules_in_force(load_rules(), Quarter(2026, 2))
START = datetime(2026, 4, 1, 9, tzinfo=UTC)


def _team(case: str, stage: str, *members: tuple[str, bool], day: int = 0) -> Team:
    at = START + timedelta(days=day)
    return Team(case, stage, f"{case}:{stage}:{day}", "z1", members, at, (at, f"d-{case}-{day}"))


def _step(case: str, kind: str, day: int) -> WorkStep:
    at = START + timedelta(days=day)
    return WorkStep(case, kind, f"s-{case}-{kind}-{day}", at, "2026Q2")


def _counts(derived: dict[tuple[str, str, str], list[str]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for (person, _zone, kpi), events in derived.items():
        counts.setdefault(person, {})[kpi] = len(events)
    return counts


def _scores(counts: dict[str, dict[str, int]]) -> dict[str, Decimal]:
    return {person: score_unit(RULES, Level.PERSON, kpis).total for person, kpis in counts.items()}


def test_steps_end_a_teams_stage_only_when_they_leave_it() -> None:
    assert stage_ended("verification_proposed", "filing_proposed") == "verification"
    assert stage_ended("verification_proposed", "verification") is None  # proposal rejected
    assert stage_ended("investigation", "hearing_pending") == "investigation"
    assert stage_ended("hearing", "investigation") == "hearing"  # sent back: the hearing is done
    assert stage_ended("decision_proposed", "transferred") == "hearing"
    assert stage_ended("appeal_first_review", "decided") == "review"
    assert stage_ended("registered", "disposal_proposed") is None


def test_different_work_gives_different_scores_and_equal_work_ties() -> None:
    teams = [
        # a and b verify k1 together (a leads); a, b investigate k2; c investigates k3 alone.
        _team("k1", "verification", ("a", True), ("b", False)),
        _team("k2", "investigation", ("a", False), ("b", False)),
        _team("k3", "investigation", ("c", True)),
        # d and e hear k2: the same work, so they tie.
        _team("k2", "hearing", ("d", False), ("e", False), day=20),
        # f investigates k4 but finishes late.
        _team("k4", "investigation", ("f", False)),
    ]
    steps = [
        _step("k1", "verification", 10),
        _step("k2", "investigation", 15),
        _step("k3", "investigation", 16),
        _step("k2", "hearing", 30),
        _step("k4", "investigation", 60),
    ]
    breaches = {("k4", "investigation"): [START + timedelta(days=50)]}
    counts = _counts(work_counts(teams, steps, breaches, "2026Q2"))
    assert counts["a"] == {
        "stages_completed": 2,
        "stages_completed.verification": 1,
        "stages_completed.investigation": 1,
        "stages_completed_in_time": 2,
        "stages_led": 1,
    }
    assert counts["f"][Kpi.STAGES_LATE.value] == 1
    scores = _scores(counts)
    # base 30; verification 1.5, investigation 3, hearing 2, leading 1; on time 7 × share.
    assert scores == {
        "a": Decimal("42.50"),
        "b": Decimal("41.50"),
        "c": Decimal("41.00"),
        "d": Decimal("39.00"),
        "e": Decimal("39.00"),
        "f": Decimal("31.00"),
    }
    ranked = rank_units(scores, RULES.tiers)
    assert [(unit.subject_id, unit.rank) for unit in ranked] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
        ("e", 4),  # equal score, equal rank; the next rank is skipped
        ("f", 6),
    ]


def test_quality_steps_count_against_the_teams_that_answer_for_them() -> None:
    teams = [
        _team("k1", "investigation", ("a", False), ("b", False)),
        _team("k1", "hearing", ("c", False), day=20),
        # The redrawn investigation team after the send-back answers for the appeal, not a/b.
        _team("k1", "investigation", ("g", False), day=40),
    ]
    steps = [
        _step("k1", "investigation", 15),
        _step("k1", SENT_BACK, 35),
        _step("k1", "investigation", 50),
        _step("k1", APPEAL_CHANGED, 80),
    ]
    counts = _counts(work_counts(teams, steps, {}, "2026Q2"))
    assert counts["a"][Kpi.CASES_SENT_BACK.value] == 1
    assert Kpi.APPEALS_CHANGED.value not in counts["a"]
    assert counts["g"][Kpi.APPEALS_CHANGED.value] == 1
    assert counts["c"] == {Kpi.APPEALS_CHANGED.value: 1}
    scores = _scores(counts)
    # Sent back costs a and b 2 points each; c loses 3 for the changed appeal.
    assert scores["a"] == scores["b"] == Decimal("38.00")
    assert scores["g"] == Decimal("37.00")


def test_a_step_in_another_quarter_is_not_counted_in_this_one() -> None:
    teams = [_team("k1", "investigation", ("a", False))]
    later = WorkStep("k1", "investigation", "s1", START + timedelta(days=100), "2026Q3")
    assert work_counts(teams, [later], {}, "2026Q2") == {}
    assert work_counts(teams, [later], {}, "2026Q3")
