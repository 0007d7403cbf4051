"""A county's working-day calendar: weekends, holidays and adjusted working weekends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days count as working days for time limits given in working days."""

    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()
    # Weekend days declared working days (调休) to make up for a holiday bridge.
    working_days: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        """Whether `day` counts towards a working-day limit."""
        if day in self.working_days:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def add_working_days(self, start: date, count: int) -> date:
        """The day on which `count` working days after `start` have passed."""
        day = start
        remaining = count
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day
