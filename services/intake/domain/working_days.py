"""Working-day arithmetic for legal time limits (weekends and listed holidays do not count)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta


def is_working_day(day: date, holidays: Collection[date]) -> bool:
    """Monday to Friday and not a holiday."""
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: datetime, days: int, holidays: Collection[date]) -> datetime:
    """The moment `days` working days after `start` (same time of day)."""
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if is_working_day(moment.date(), holidays):
            remaining -= 1
    return moment
