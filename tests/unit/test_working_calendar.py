"""One working-day calendar per county: the State Council's schedule as data, checked by line."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.cases.domain.rules import DEFAULT_RULES
from services.intake.domain.rules import RulesInvalid, parse_rules
from services.intake.store.rule_files import load_rule_book
from services.working_calendar import (
    NATIONAL_CALENDAR,
    NATIONAL_CALENDAR_FILE,
    CalendarInvalid,
    CalendarNotCovered,
    parse_calendar,
)
from services.working_calendar.__main__ import main as check_files
from services.working_calendar.settings import county_calendar, coverage_warnings

FRIDAY_BEFORE_SPRING_FESTIVAL = datetime(2026, 2, 13, 9, 30, tzinfo=UTC)


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
        "line 3: colour: unknown key (expected name, weekend, years)",
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
    assert "2026: 33 holidays, 6 adjusted working days" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nyears: {}\n", encoding="utf-8")
    assert check_files([str(bad)]) == 1
    assert "line 2: years: must map each year" in capsys.readouterr().err
