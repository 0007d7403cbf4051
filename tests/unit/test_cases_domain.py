"""Cases' pure rules: rule versions and the clue disposal deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.cases.domain.clue import NewClue, disposal_due
from services.cases.domain.rules import DEFAULT_RULES, RuleSet, add_months, rules_in_force


@pytest.mark.parametrize(
    ("start", "months", "due"),
    [
        (datetime(2026, 1, 15, 9, tzinfo=UTC), 1, datetime(2026, 2, 15, 9, tzinfo=UTC)),
        (datetime(2026, 1, 31, 9, tzinfo=UTC), 1, datetime(2026, 2, 28, 9, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, tzinfo=UTC), 1, datetime(2028, 2, 29, 9, tzinfo=UTC)),
        (datetime(2026, 12, 10, tzinfo=UTC), 1, datetime(2027, 1, 10, tzinfo=UTC)),
        (datetime(2026, 11, 30, tzinfo=UTC), 3, datetime(2027, 2, 28, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_month_end(start: datetime, months: int, due: datetime) -> None:
    assert add_months(start, months) == due


def test_clue_is_due_one_month_after_registration_by_default() -> None:
    clue = NewClue(
        clue_id="clue-1",
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        source_report_id="rpt-1",
        channel="letter",
        allegation_categories=("bribery",),
        subject_cadre_level="village",
        real_name=False,
        registered_at=datetime(2026, 3, 31, 8, tzinfo=UTC),
    )
    assert disposal_due(clue, DEFAULT_RULES) == datetime(2026, 4, 30, 8, tzinfo=UTC)


def test_the_version_in_force_on_a_day_is_chosen() -> None:
    later = RuleSet(
        version="county-2027.1", effective_from=date(2027, 1, 1), clue_disposal_months=2
    )
    versions = [DEFAULT_RULES, later]
    assert rules_in_force(versions, date(2026, 12, 31)) is DEFAULT_RULES
    assert rules_in_force(versions, date(2027, 1, 1)) is later
    with pytest.raises(LookupError):
        rules_in_force(versions, date(2025, 1, 1))
