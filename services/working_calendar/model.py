"""A county's working-day calendar: weekends, public holidays and adjusted working weekends (调休).

One calendar serves every working-day time limit of a county (intake's feedback and forwarding
limits, cases' letter-of-inquiry reply, collaboration's answers), so two services can never
disagree on a due date. It knows the years its data lists and refuses any other day: a day it
cannot judge is not silently taken for a working day.

Days are the county's own: an instant (stored and sent in UTC) is put on the county's clock
before its date is taken, and a due moment found on that clock is handed back in UTC. A report
received at 07:30 on a Monday in Beijing is 23:30 UTC on the Sunday; counted on the UTC date it
would start from the wrong day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# China keeps one clock (Beijing time, UTC+8, no daylight saving).
DEFAULT_TIME_ZONE = "Asia/Shanghai"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class MomentOutOfRange(LookupError):
    """A moment so close to the end of time that the county's clock cannot show its date."""

    def __init__(self, moment: datetime, time_zone: str) -> None:
        super().__init__(f"{moment.isoformat()} has no date on the county's clock ({time_zone})")


class CalendarNotCovered(LookupError):
    """A working-day count reached a year the county's calendar does not list."""

    def __init__(self, calendar: str, day: date, years: tuple[int, ...]) -> None:
        listed = f"{years[0]}..{years[-1]}" if years else "no year"
        super().__init__(
            f"the working calendar {calendar!r} lists {listed}; {day.isoformat()} is outside "
            f"it: add the State Council's holiday schedule for {day.year} to the calendar file"
        )
        self.day = day


@dataclass(frozen=True)
class CalendarYear:
    """One year's holidays and adjusted working days, with the notice they come from."""

    year: int
    source: str
    holidays: frozenset[date] = frozenset()
    # Weekend days declared working days (调休上班) to make up for a holiday bridge.
    working_days: frozenset[date] = frozenset()
    # Statutory holidays only: the State Council's arrangement for the year is not out yet.
    provisional: bool = False


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days count for time limits given in working days."""

    name: str
    years: Mapping[int, CalendarYear] = field(default_factory=dict)
    weekend: frozenset[int] = frozenset({5, 6})
    # IANA name of the county's clock: the one whose dates the holidays and limits are on.
    time_zone: str = DEFAULT_TIME_ZONE

    def __post_init__(self) -> None:
        # An unknown zone fails here, when the calendar is built, not at the first due date.
        ZoneInfo(self.time_zone)

    @property
    def zone(self) -> ZoneInfo:
        """The county's clock (ZoneInfo caches each zone, so this is a lookup)."""
        return ZoneInfo(self.time_zone)

    def local(self, moment: datetime) -> datetime:
        """`moment` on the county's clock; a naive moment is UTC, as the databases keep it."""
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        try:
            return aware.astimezone(self.zone)
        except OverflowError:
            # 9999-12-31T23:00Z is a valid Timestamp but has no date on a clock east of UTC.
            raise MomentOutOfRange(moment, self.time_zone) from None

    def local_date(self, moment: datetime) -> date:
        """The county's date at `moment` (what a day count starts from)."""
        return self.local(moment).date()

    def in_utc(self, day: date, time_of_day: time) -> datetime:
        """The UTC instant of `time_of_day` (the county's clock) on the county's `day`."""
        return datetime.combine(day, time_of_day, tzinfo=self.zone).astimezone(UTC)

    @property
    def first_year(self) -> int:
        """The earliest year the calendar lists."""
        return min(self.years)

    @property
    def last_year(self) -> int:
        """The latest year the calendar lists; later days are refused."""
        return max(self.years)

    @property
    def provisional_years(self) -> tuple[int, ...]:
        """Years listed with statutory holidays only, to be replaced by the official schedule."""
        return tuple(sorted(year for year, data in self.years.items() if data.provisional))

    def is_working_day(self, day: date) -> bool:
        """Whether `day` counts towards a working-day limit (CalendarNotCovered if unknown)."""
        year = self.years.get(day.year)
        if year is None:
            raise CalendarNotCovered(self.name, day, tuple(sorted(self.years)))
        if day in year.working_days:
            return True
        return day.weekday() not in self.weekend and day not in year.holidays

    def add_working_days(self, start: date, count: int) -> date:
        """The day on which `count` working days after `start` have passed."""
        day = start
        remaining = count
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_after(self, start: datetime, count: int) -> datetime:
        """The moment `count` working days after `start`, at the same local time of day, in UTC.

        Counted from the county's date at `start`, not the UTC date: the two differ for
        everything received between midnight and 08:00 Beijing time.
        """
        local = self.local(start)
        return self.in_utc(self.add_working_days(local.date(), count), local.time())
