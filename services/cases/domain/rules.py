"""Time-limit rules as versioned data: a clue keeps the version it was registered under."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class RuleSet:
    """One version of a county's procedural rules."""

    version: str
    effective_from: date
    # 线索处置: a clue must be disposed of within this many calendar months.
    clue_disposal_months: int


# The national default from DOMAIN.md; counties override it with their own versions.
DEFAULT_RULES = RuleSet(
    version="cn-default-2026.1", effective_from=date(2026, 1, 1), clue_disposal_months=1
)


def rules_in_force(versions: list[RuleSet], on: date) -> RuleSet:
    """The newest version effective on `on`."""
    candidates = [rules for rules in versions if rules.effective_from <= on]
    if not candidates:
        raise LookupError(f"no rule set is in force on {on.isoformat()}")
    return max(candidates, key=lambda rules: rules.effective_from)


def add_months(moment: datetime, months: int) -> datetime:
    """Same day `months` later, clamped to the month's last day (Jan 31 + 1 → Feb 28/29)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
