"""Intake's duplicate rules, routing and reporter progress (pure domain, property-based)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.intake.app import CASE_PROGRESS_EVENTS
from services.intake.domain.duplicates import (
    DuplicateProfile,
    DuplicateRules,
    KnownReport,
    Linked,
    classify,
    edit_distance,
    normalise,
    raised_priority,
)
from services.intake.domain.progress import PROGRESS_OF_EVENT, progressed
from services.intake.domain.routing import route
from services.intake.domain.status import ReportStatus
from services.intake.store.rule_files import load_rule_book

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _profile(
    *,
    name: str = "lisi",
    unit: str = "hexivillagecommittee",
    township: str = "t1",
    categories: frozenset[str] = frozenset({"embezzlement"}),
    at: datetime = START,
) -> DuplicateProfile:
    return DuplicateProfile("c1", name, unit, township, categories, at)


@given(
    window_days=st.integers(min_value=1, max_value=365),
    offset_seconds=st.integers(min_value=-400 * 86_400, max_value=400 * 86_400),
)
def test_a_repeat_inside_the_window_links_and_outside_opens_a_new_clue(
    window_days: int, offset_seconds: int
) -> None:
    rules = DuplicateRules(window_days=window_days, near_name_max_edits=1)
    first = KnownReport("rpt-1", "clue-1", _profile())
    repeat = _profile(at=START + timedelta(seconds=offset_seconds))
    outcome = classify(repeat, [first], rules)
    if abs(offset_seconds) <= window_days * 86_400:
        assert outcome == Linked("clue-1", "rpt-1")
    else:
        # Outside the window nothing is linked or flagged: the report opens its own clue.
        assert outcome == []


@given(
    spelling=st.sampled_from(["Li Si", "li si", "LI  SI", "Ｌｉ　Ｓｉ", "Li-Si", " li.si "]),
)
def test_spelling_width_case_and_punctuation_do_not_make_another_subject(spelling: str) -> None:
    assert normalise(spelling) == "lisi"


def test_the_latest_exact_repeat_in_the_window_is_the_one_linked() -> None:
    rules = DuplicateRules(window_days=90, near_name_max_edits=1)
    known = [
        KnownReport("rpt-old", "clue-old", _profile(at=START - timedelta(days=200))),
        KnownReport("rpt-1", "clue-1", _profile(at=START - timedelta(days=10))),
        KnownReport("rpt-2", "clue-1", _profile(at=START - timedelta(days=2))),
    ]
    assert classify(_profile(), known, rules) == Linked("clue-1", "rpt-2")


def test_near_duplicates_are_flagged_not_linked() -> None:
    rules = DuplicateRules(window_days=90, near_name_max_edits=1)
    known = [
        KnownReport("r-cat", "c-cat", _profile(categories=frozenset({"bribery"}))),
        KnownReport("r-name", "c-name", _profile(name="lisy")),
        KnownReport("r-far", "c-far", _profile(name="wangwu")),
        KnownReport("r-elsewhere", "c-else", _profile(township="t2", name="lisy")),
    ]
    flagged = classify(_profile(), known, rules)
    assert isinstance(flagged, list)
    reasons = {similar.clue_id: similar.reason for similar in flagged}
    assert set(reasons) == {"c-cat", "c-name"}
    assert "different allegation categories" in reasons["c-cat"]
    assert "1 edit" in reasons["c-name"]


def test_edit_distance_stops_past_its_limit() -> None:
    assert edit_distance("zhangsan", "zhangsan", limit=1) == 0
    assert edit_distance("zhangsan", "zhangshan", limit=1) == 1
    assert edit_distance("zhangsan", "lisi", limit=1) == 2


def test_repeats_raise_priority_up_to_the_cap() -> None:
    assert raised_priority(40, per_repeat=10, cap=100) == 50
    assert raised_priority(95, per_repeat=10, cap=100) == 100


def test_the_registry_decides_the_zone_and_old_clients_keep_theirs() -> None:
    assert route(township_id="t1", requested_zone="", placed_zone="z2") == ("z2", "")
    assert route(township_id="t1", requested_zone="z2", placed_zone="z2") == ("z2", "")
    zone, problem = route(township_id="t1", requested_zone="z9", placed_zone="z2")
    assert zone == "" and "belongs to zone z2" in problem
    assert route(township_id="t9", requested_zone="z1", placed_zone=None) == ("z1", "")
    zone, problem = route(township_id="t9", requested_zone="", placed_zone=None)
    assert zone == "" and "required" in problem


def test_rules_name_the_duplicate_window_and_upward_jurisdiction() -> None:
    rules = load_rule_book().rules[0]
    assert rules.duplicate_window_days == 90
    assert rules.near_name_max_edits == 1
    assert "county_division" in rules.forward_upward


def test_every_case_step_intake_consumes_has_a_reporter_status() -> None:
    assert {event.event_type for event in CASE_PROGRESS_EVENTS} == set(PROGRESS_OF_EVENT)


def test_progress_only_moves_forward_and_never_overrides_a_refusal() -> None:
    received, accepted = ReportStatus.RECEIVED, ReportStatus.ACCEPTED
    in_progress, concluded = ReportStatus.IN_PROGRESS, ReportStatus.CONCLUDED
    assert progressed(received, in_progress) is in_progress
    assert progressed(accepted, concluded) is concluded
    assert progressed(concluded, in_progress) is None
    assert progressed(in_progress, in_progress) is None
    assert progressed(ReportStatus.NOT_ACCEPTED, concluded) is None
    assert progressed(ReportStatus.FORWARDED, in_progress) is None
