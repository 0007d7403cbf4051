"""Which calendar file a county's services read (`XIEZUO_WORKING_CALENDAR_FILE`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.working_calendar.file import NATIONAL_CALENDAR_FILE, load_calendar
from services.working_calendar.model import WorkingCalendar


class CalendarSettings(BaseSettings):
    """One file for every service of the county; unset: the national calendar."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_", extra="ignore")

    working_calendar_file: Path = NATIONAL_CALENDAR_FILE


def county_calendar() -> WorkingCalendar:
    """The county's calendar, validated (CalendarInvalid stops the service from starting)."""
    return load_calendar(CalendarSettings().working_calendar_file)


def coverage_warnings(calendar: WorkingCalendar, today: date) -> list[str]:
    """What an operator must fix soon: provisional years in use, the calendar running out."""
    warnings = [
        f"working calendar {calendar.name!r}: {year} lists the statutory holidays only; "
        f"replace it with the State Council's schedule for {year}"
        for year in calendar.provisional_years
        if year >= today.year
    ]
    # Deadlines of 15 working days reach about three weeks ahead, so warn from October on.
    if calendar.last_year < today.year or (calendar.last_year == today.year and today.month >= 10):
        warnings.append(
            f"working calendar {calendar.name!r} ends with {calendar.last_year}: working-day "
            f"deadlines past it are refused until {calendar.last_year + 1} is added"
        )
    return warnings
