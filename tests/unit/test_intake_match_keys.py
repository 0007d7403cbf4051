"""Duplicate match keys find every report the duplicate rules could link or flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain.duplicates import (
    DuplicateProfile,
    DuplicateRules,
    KnownReport,
    classify,
    edit_distance,
    lookup_match_keys,
    stored_match_keys,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# A tiny alphabet and short names make near and exact matches frequent.
NAMES = st.text(alphabet="abc李", max_size=5)
RULES = DuplicateRules(window_days=90, near_name_max_edits=1)


def _profile(
    name: str, *, township: str = "t1", unit: str = "u", cats: str = "x"
) -> DuplicateProfile:
    return DuplicateProfile("c1", name, unit, township, frozenset(cats), START)


@given(old=NAMES, new=NAMES)
def test_names_within_one_edit_share_a_key(old: str, new: str) -> None:
    shared = stored_match_keys(_profile(old)) & (lookup_match_keys(_profile(new), RULES) or set())
    if edit_distance(old, new, limit=1) <= 1:
        assert shared
    exact_only = DuplicateRules(window_days=90, near_name_max_edits=0)
    if old == new:
        assert stored_match_keys(_profile(old)) & (
            lookup_match_keys(_profile(new), exact_only) or set()
        )


def test_keys_are_per_township_and_more_edits_than_indexed_need_a_scan() -> None:
    assert not stored_match_keys(_profile("lisi")) & (
        lookup_match_keys(_profile("lisi", township="t2"), RULES) or set()
    )
    assert lookup_match_keys(_profile("lisi"), DuplicateRules(90, near_name_max_edits=2)) is None


@given(
    new=st.tuples(NAMES, st.sampled_from("uv"), st.sampled_from(["x", "y", "xy"])),
    known=st.lists(
        st.tuples(
            NAMES,
            st.sampled_from("uv"),
            st.sampled_from(["x", "y", "xy"]),
            st.integers(min_value=-120, max_value=120),
        ),
        max_size=12,
    ),
)
def test_classifying_only_reports_sharing_a_key_gives_the_same_outcome(
    new: tuple[str, str, str], known: list[tuple[str, str, str, int]]
) -> None:
    profile = _profile(new[0], unit=new[1], cats=new[2])
    reports = [
        KnownReport(
            f"rpt-{index}",
            f"clue-{index % 4}",
            DuplicateProfile(
                "c1", name, unit, "t1", frozenset(cats), START + timedelta(days=days, seconds=index)
            ),
        )
        for index, (name, unit, cats, days) in enumerate(known)
    ]
    keys = lookup_match_keys(profile, RULES)
    assert keys is not None
    found = [report for report in reports if stored_match_keys(report.profile) & keys]
    assert classify(profile, found, RULES) == classify(profile, reports, RULES)
