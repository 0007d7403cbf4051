"""The demo's letters are asked from cases whose paper days spread over the year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.demo.letters import spread_over_the_year

START = datetime(2026, 1, 5, tzinfo=UTC)


def test_five_of_many_cases_spread_from_the_earliest_to_the_latest() -> None:
    cases = [(f"c-{n:02d}", "z-1") for n in range(40)]
    # Paper days a week apart, listed out of order (clue ids are random).
    asked_on = {
        case_id: START + timedelta(weeks=(n * 7) % 40) for n, (case_id, _) in enumerate(cases)
    }
    chosen = spread_over_the_year(cases, asked_on, 5)
    days = sorted(asked_on[case_id] for case_id, _ in chosen)
    assert days[0] == START and days[-1] == START + timedelta(weeks=39)
    # Every quarter of the 40 weeks gets a letter.
    assert len({(day - START).days // 91 for day in days}) == 4


def test_too_few_dated_cases_are_filled_up_with_undated_ones() -> None:
    cases = [("c-1", "z-1"), ("c-2", "z-2"), ("c-3", "z-1")]
    chosen = spread_over_the_year(cases, {"c-3": START}, 2)
    assert chosen == [("c-3", "z-1"), ("c-1", "z-1")]
