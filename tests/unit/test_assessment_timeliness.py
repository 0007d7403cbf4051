"""Disposal and investigation within the limit: which clock, and the verdict."""

from __future__ import annotations

from datetime import UTC, datetime

from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.scoring_rules import load_rules, rules_in_force
from services.assessment.domain.timeliness import (
    DISPOSAL,
    INVESTIGATION,
    breach_clock,
    clock_kpis,
    investigation_finished,
    supersedes,
    within_limit,
)

FINISHED = datetime(2027, 2, 10, 9, tzinfo=UTC)


def test_breaches_map_to_the_judged_clocks_only() -> None:
    assert breach_clock("disposal", "case") == DISPOSAL
    assert breach_clock("reinvestigation", "case") == INVESTIGATION
    assert breach_clock("hearing", "case") is None
    assert breach_clock("disposal", "rectification") is None


def test_only_leaving_the_investigation_stops_its_clock() -> None:
    assert investigation_finished("investigation", "hearing_pending")
    assert not investigation_finished("investigation", "investigation")
    assert not investigation_finished("hearing", "decided")


def test_a_breach_due_before_the_finish_makes_it_late() -> None:
    assert within_limit(FINISHED, [])
    assert within_limit(FINISHED, [datetime(2027, 3, 1, tzinfo=UTC)])
    assert not within_limit(FINISHED, [datetime(2027, 2, 1, tzinfo=UTC)])
    # Naive times are UTC; the edge (due exactly when finished) is late.
    assert not within_limit(FINISHED, [FINISHED.replace(tzinfo=None)])


def test_clock_kpis_count_disposals_in_time_and_every_investigation() -> None:
    assert clock_kpis(DISPOSAL, True) == [Kpi.CLUES_DISPOSED_IN_TIME]
    assert clock_kpis(DISPOSAL, False) == []
    assert clock_kpis(INVESTIGATION, False) == [Kpi.INVESTIGATIONS_FINISHED]
    assert clock_kpis(INVESTIGATION, True) == [
        Kpi.INVESTIGATIONS_FINISHED,
        Kpi.INVESTIGATIONS_FINISHED_IN_TIME,
    ]


def test_the_latest_finish_supersedes_in_any_order() -> None:
    earlier = (datetime(2027, 1, 1, tzinfo=UTC), "b")
    later = (datetime(2027, 1, 2), "a")
    assert supersedes(later, earlier)
    assert not supersedes(earlier, later)


def test_2026_keeps_its_scheme_and_2027_scores_timeliness() -> None:
    rules = load_rules()
    in_2026 = rules_in_force(rules, Quarter(2026, 4))
    # 2026.2 corrects 2026.1's staff scheme from the same day; zones are scored as before.
    assert in_2026.version == "cn-default-2026.2"
    first = next(version for version in rules if version.version == "cn-default-2026.1")
    assert in_2026.levels[Level.ZONE] == first.levels[Level.ZONE]
    assert in_2026.levels[Level.PERSON] != first.levels[Level.PERSON]
    scheme = rules_in_force(rules, Quarter(2027, 1))
    # 2027.3 adds help between counties to 2027.2's zones (issue 11).
    assert scheme.version == "cn-default-2027.3"
    assert Kpi.CLUES_DISPOSED_IN_TIME in scheme.levels[Level.ZONE].kpis()
