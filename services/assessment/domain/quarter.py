"""Quarters of the assessment calendar, decided by when something happened (never by the clock)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    """One quarter of a year, written `2026Q3`."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """Parse `2026Q3`; raises ValueError otherwise."""
        found = _QUARTER.match(text.strip().upper())
        if not found:
            raise ValueError(f"{text!r} is not a quarter like 2026Q3")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of_day(cls, day: date) -> Quarter:
        """The quarter a calendar day falls in."""
        return cls(day.year, (day.month - 1) // 3 + 1)

    def first_day(self) -> date:
        """The quarter's first calendar day."""
        return date(self.year, 3 * (self.number - 1) + 1, 1)

    def next(self) -> Quarter:
        """The following quarter."""
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"


@dataclass(frozen=True)
class AssessmentCalendar:
    """Where quarter boundaries fall: midnight in the county's time zone, not in UTC."""

    time_zone: str = "Asia/Shanghai"

    def quarter_of(self, moment: datetime) -> Quarter:
        """The quarter in which `moment` (an event's own time) falls locally."""
        if moment.tzinfo is None:
            # Naive times in events and databases are UTC throughout the platform.
            moment = moment.replace(tzinfo=UTC)
        return Quarter.of_day(moment.astimezone(ZoneInfo(self.time_zone)).date())

    def has_ended(self, quarter: Quarter, now: datetime) -> bool:
        """Whether local midnight after the quarter's last day has passed at `now`."""
        zone = ZoneInfo(self.time_zone)
        end = datetime.combine(quarter.next().first_day(), time.min, tzinfo=zone)
        return now >= end
