"""One working-day calendar per county, shared by intake, cases and collaboration."""

from services.working_calendar.file import (
    NATIONAL_CALENDAR_FILE,
    CalendarInvalid,
    load_calendar,
    parse_calendar,
)
from services.working_calendar.model import (
    DEFAULT_TIME_ZONE,
    WEEKDAYS,
    CalendarNotCovered,
    CalendarYear,
    MomentOutOfRange,
    WorkingCalendar,
)

__all__ = [
    "DEFAULT_TIME_ZONE",
    "NATIONAL_CALENDAR",
    "NATIONAL_CALENDAR_FILE",
    "WEEKDAYS",
    "CalendarInvalid",
    "CalendarNotCovered",
    "CalendarYear",
    "MomentOutOfRange",
    "WorkingCalendar",
    "load_calendar",
    "parse_calendar",
]

# The State Council's schedule shipped as data (cn_national.yaml): the default of every county.
NATIONAL_CALENDAR = load_calendar(NATIONAL_CALENDAR_FILE)
