"""One working-day calendar per county: the State Council's schedule as data, checked by line."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.cases.domain.rules import DEFAULT_RULES
from services.intake.domain.rules import RulesInvalid, parse_rules
from services.intake.store.rule_files import load_rule_book
from services.working_calendar import (
    NATIONAL_CALENDAR,
    NATIONAL_CALENDAR_FILE,
    CalendarInvalid,
    CalendarNotCovered,
    MomentOutOfRange,
    parse_calendar,
)
from services.working_calendar.__main__ import main as check_files
from services.working_calendar.settings import county_calendar, coverage_warnings

FRIDAY_BEFORE_SPRING_FESTIVAL = datetime(2026, 2, 13, 9, 30, tzinfo=UTC)
BEIJING = ZoneInfo("Asia/Shanghai")
# Beijing time is UTC+8: 07:30 on Monday 2 March 2026 in the county is still Sunday in UTC.
MONDAY_0730_BEIJING = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


def test_the_national_calendar_is_the_state_councils_2026_schedule() -> None:
    year = NATIONAL_CALENDAR.years[2026]
    # 33 days off and 6 adjusted working days in the notice of 4 November 2025.
    assert len(year.holidays) == 33 and not year.provisional
    assert sorted(year.working_days) == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    assert {date(2026, 2, 16), date(2026, 2, 23), date(2026, 10, 7)} <= year.holidays


def test_a_deadline_spanning_the_spring_festival_skips_the_nine_days_off() -> None:
    # Sat 14 Feb is worked (1), 15–23 Feb off, 24–27 Feb (2–5).
    due = NATIONAL_CALENDAR.working_days_after(FRIDAY_BEFORE_SPRING_FESTIVAL, 5)
    assert due == datetime(2026, 2, 27, 9, 30, tzinfo=UTC)
    # 函询 reply, 15 working days: Sat 28 Feb is worked too, so Thu 12 March.
    assert DEFAULT_RULES.due("inquiry_reply", FRIDAY_BEFORE_SPRING_FESTIVAL) == datetime(
        2026, 3, 12, 9, 30, tzinfo=UTC
    )


def test_an_adjusted_working_weekend_day_counts() -> None:
    assert NATIONAL_CALENDAR.is_working_day(date(2026, 2, 14))  # a Saturday
    assert NATIONAL_CALENDAR.add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)
    # Wed 31 Dec 2025 + 1: 1–3 Jan off, Sunday 4 Jan worked (across the year's end).
    assert NATIONAL_CALENDAR.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 4)
    assert not NATIONAL_CALENDAR.is_working_day(date(2026, 2, 21))  # a Saturday in the break


def test_a_count_starts_from_the_countys_date_not_the_utc_date() -> None:
    assert NATIONAL_CALENDAR.time_zone == "Asia/Shanghai"
    assert NATIONAL_CALENDAR.local_date(MONDAY_0730_BEIJING) == date(2026, 3, 2)
    # 5 working days from Monday 2 March: Monday 9 March, 07:30 Beijing time, handed back in UTC.
    # (From the UTC date, Sunday, it was Saturday 7 March 07:30, a day off.)
    due = NATIONAL_CALENDAR.working_days_after(MONDAY_0730_BEIJING, 5)
    assert due == datetime(2026, 3, 8, 23, 30, tzinfo=UTC) and due.tzinfo is UTC
    assert due.astimezone(BEIJING) == datetime(2026, 3, 9, 7, 30, tzinfo=BEIJING)
    # A naive moment (as SQLite hands one back) is UTC.
    assert NATIONAL_CALENDAR.working_days_after(MONDAY_0730_BEIJING.replace(tzinfo=None), 5) == due


def test_the_adjusted_working_saturday_and_the_late_friday_before_it_count_on_local_dates() -> None:
    # Sat 14 Feb 07:30 Beijing time (a working Saturday) is Fri 13 Feb 23:30 UTC.
    early_saturday = datetime(2026, 2, 13, 23, 30, tzinfo=UTC)
    assert NATIONAL_CALENDAR.local_date(early_saturday) == date(2026, 2, 14)
    # One working day on: 15–23 Feb off, so Tue 24 Feb 07:30 (not Sun 15 Feb, a holiday).
    assert NATIONAL_CALENDAR.working_days_after(early_saturday, 1) == datetime(
        2026, 2, 23, 23, 30, tzinfo=UTC
    )
    # Forwarding (5): Sat 28 Feb (worked) 07:30; feedback (15): Fri 13 March 07:30.
    assert NATIONAL_CALENDAR.working_days_after(early_saturday, 5) == datetime(
        2026, 2, 27, 23, 30, tzinfo=UTC
    )
    assert NATIONAL_CALENDAR.working_days_after(early_saturday, 15) == datetime(
        2026, 3, 12, 23, 30, tzinfo=UTC
    )
    # Fri 13 Feb 23:30 Beijing time (15:30 UTC) is still Friday: the Saturday is day 1.
    late_friday = datetime(2026, 2, 13, 15, 30, tzinfo=UTC)
    assert NATIONAL_CALENDAR.local_date(late_friday) == date(2026, 2, 13)
    assert NATIONAL_CALENDAR.working_days_after(late_friday, 1) == datetime(
        2026, 2, 14, 15, 30, tzinfo=UTC
    )
    assert NATIONAL_CALENDAR.working_days_after(late_friday, 15) == datetime(
        2026, 3, 12, 15, 30, tzinfo=UTC
    )
    # Sun 1 March 07:30 Beijing time is Sat 28 Feb (a working Saturday) in UTC: Sunday counts
    # as the start, so 5 working days end Fri 6 March 07:30, not 23:30.
    early_sunday = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)
    assert NATIONAL_CALENDAR.working_days_after(early_sunday, 5) == datetime(
        2026, 3, 5, 23, 30, tzinfo=UTC
    )


def test_cases_count_months_and_warnings_on_the_countys_dates_too() -> None:
    # Tue 31 March 01:00 Beijing time (30 March in UTC) + 1 month = Thu 30 April 01:00 Beijing.
    registered = datetime(2026, 3, 30, 17, tzinfo=UTC)
    due = DEFAULT_RULES.due("disposal", registered)
    assert due == datetime(2026, 4, 29, 17, tzinfo=UTC)
    assert DEFAULT_RULES.warn_at("disposal", due) == datetime(2026, 4, 24, 17, tzinfo=UTC)
    # The letter-of-inquiry reply, sent Monday 07:30 Beijing time: Monday 23 March 07:30.
    reply_due = DEFAULT_RULES.due("inquiry_reply", MONDAY_0730_BEIJING)
    assert reply_due == datetime(2026, 3, 22, 23, 30, tzinfo=UTC)
    assert DEFAULT_RULES.warn_at("inquiry_reply", reply_due) == datetime(
        2026, 3, 19, 23, 30, tzinfo=UTC
    )


def test_an_intake_rule_version_takes_effect_at_the_countys_midnight() -> None:
    book = load_rule_book()
    first = book.rules_on(date(2026, 12, 31))
    next_year = replace(first, version="v2027", effective_from=date(2027, 1, 1))
    book = replace(book, rules=(*book.rules, next_year))
    # 1 January 2027 00:30 Beijing time is 31 December 16:30 UTC.
    assert book.rules_at(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)).version == "v2027"
    assert book.rules_at(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)).version == first.version
    assert book.taxonomy_at(MONDAY_0730_BEIJING) == book.taxonomy_on(date(2026, 3, 2))


def test_a_county_on_another_clock_counts_on_its_own_dates() -> None:
    text = NATIONAL_CALENDAR_FILE.read_text(encoding="utf-8").replace(
        "time_zone: Asia/Shanghai", "time_zone: UTC"
    )
    on_utc = parse_calendar(text)
    assert on_utc.time_zone == "UTC"
    # Sunday 1 March on that clock: 5 working days end Friday 6 March 23:30.
    assert on_utc.working_days_after(MONDAY_0730_BEIJING, 5) == datetime(
        2026, 3, 6, 23, 30, tzinfo=UTC
    )


def test_a_calendar_file_without_a_time_zone_is_on_beijing_time() -> None:
    text = "name: x\nyears:\n  2026:\n    source: s\n    holidays: []\n    working_days: []\n"
    assert parse_calendar(text).time_zone == "Asia/Shanghai"


@pytest.mark.parametrize("zone", ["Asia/Shanghia", "Asia", "''", "'+08:00'", "[a]"])
def test_an_unknown_time_zone_is_refused_on_its_line(zone: str) -> None:
    text = f"name: x\ntime_zone: {zone}\nyears:\n  2026:\n    source: s\n"
    text += "    holidays: []\n    working_days: []\n"
    with pytest.raises(CalendarInvalid) as invalid:
        parse_calendar(text)
    [error] = invalid.value.errors
    assert error.startswith("line 2: time_zone: ") and "is not an IANA time zone" in error


def test_intake_and_cases_count_on_one_calendar_and_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A county's own file with a local day off (Mon 2 March): both services see it.
    text = NATIONAL_CALENDAR_FILE.read_text(encoding="utf-8").replace(
        "name: cn-national", "name: county-x"
    )
    text = text.replace(
        "      - [2026-04-04, 2026-04-06]", "      - 2026-03-02\n      - [2026-04-04, 2026-04-06]"
    )
    path = tmp_path / "calendar.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("XIEZUO_WORKING_CALENDAR_FILE", str(path))
    calendar = county_calendar()
    assert calendar.name == "county-x"
    book = load_rule_book(calendar=calendar)
    cases_rules = replace(DEFAULT_RULES, calendar=calendar)
    intake_rules = book.rules_on(FRIDAY_BEFORE_SPRING_FESTIVAL.date())
    # Both limits are 15 working days: acceptance feedback (intake), inquiry reply (cases).
    assert intake_rules.acceptance_feedback_working_days == 15
    feedback_due = book.calendar.working_days_after(
        FRIDAY_BEFORE_SPRING_FESTIVAL, intake_rules.acceptance_feedback_working_days
    )
    reply_due = cases_rules.due("inquiry_reply", FRIDAY_BEFORE_SPRING_FESTIVAL)
    assert feedback_due == reply_due == datetime(2026, 3, 13, 9, 30, tzinfo=UTC)


def test_a_day_past_the_last_listed_year_is_refused_not_guessed() -> None:
    only_2026 = replace(NATIONAL_CALENDAR, years={2026: NATIONAL_CALENDAR.years[2026]})
    with pytest.raises(CalendarNotCovered, match="2027-01-01 is outside it"):
        only_2026.add_working_days(date(2026, 12, 24), 15)
    with pytest.raises(CalendarNotCovered):
        DEFAULT_RULES.due("inquiry_reply", datetime(2024, 12, 2, tzinfo=UTC))


def test_operators_are_warned_of_provisional_years_and_the_calendar_running_out() -> None:
    assert NATIONAL_CALENDAR.provisional_years == (2027,)
    assert coverage_warnings(NATIONAL_CALENDAR, date(2026, 3, 1)) == [
        "working calendar 'cn-national': 2027 lists the statutory holidays only; "
        "replace it with the State Council's schedule for 2027"
    ]
    late = coverage_warnings(NATIONAL_CALENDAR, date(2027, 11, 1))
    assert any("ends with 2027" in warning for warning in late)


def test_every_problem_in_a_calendar_file_is_reported_with_its_line() -> None:
    text = """\
name: county-x
weekend: [saturday, sunday]
colour: red
years:
  2026:
    source: notice
    holidays:
      - 2026-01-01
      - 2025-12-31
      - [2026-02-15, 2026-02-01]
      - not-a-date
      - 2026-01-01
    working_days: [2026-02-16, 2026-02-14]
  2028:
    source: notice
    provisional: maybe
    holidays: []
    working_days: [2028-01-01]
"""
    with pytest.raises(CalendarInvalid) as invalid:
        parse_calendar(text)
    assert invalid.value.errors == [
        "line 3: colour: unknown key (expected name, time_zone, weekend, years)",
        "line 9: years.2026.holidays: 2025-12-31 is not in 2026",
        "line 10: years.2026.holidays: [2026-02-15, 2026-02-01] is not a run of at most 15 days",
        "line 11: years.2026.holidays: 'not-a-date' is not a date (YYYY-MM-DD)",
        "line 12: years.2026.holidays: 2026-01-01 is listed twice",
        "line 13: 2026-02-16 is a weekday: only a weekend day is made a working day",
        "line 16: years.2028.provisional: must be true or false",
        "line 5: years: 2027..2027 missing between",
    ]


def test_a_calendar_file_with_both_a_holiday_and_a_working_day_on_one_date_is_refused() -> None:
    text = "name: x\nyears:\n  2026:\n    source: s\n    holidays: [2026-02-14]\n"
    text += "    working_days: [2026-02-14]\n"
    with pytest.raises(CalendarInvalid, match="line 6: 2026-02-14 is both a holiday"):
        parse_calendar(text)


def test_intake_rules_carry_no_holidays_of_their_own() -> None:
    with pytest.raises(RulesInvalid, match="holidays: holidays live in the county's working"):
        parse_rules(
            {
                "versions": [
                    {
                        "version": "v",
                        "effective_from": date(2026, 1, 1),
                        "holidays": [date(2026, 1, 1)],
                    }
                ]
            }
        )


def test_the_checker_prints_each_year_and_fails_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_files([str(NATIONAL_CALENDAR_FILE)]) == 0
    out = capsys.readouterr().out
    assert "2026: 33 holidays, 6 adjusted working days" in out
    assert "days are counted on Asia/Shanghai dates" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nyears: {}\n", encoding="utf-8")
    assert check_files([str(bad)]) == 1
    assert "line 2: years: must map each year" in capsys.readouterr().err


def test_a_moment_at_the_end_of_time_is_refused_not_crashed() -> None:
    # The fuzz suite sent received_at = 9999-12-31T23:00Z: valid on the wire, no Beijing date.
    with pytest.raises(MomentOutOfRange, match="no date on the county's clock"):
        NATIONAL_CALENDAR.local_date(datetime(9999, 12, 31, 23, tzinfo=UTC))
    assert issubclass(MomentOutOfRange, LookupError)  # intake's taxonomy lookup refuses it
