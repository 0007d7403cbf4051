"""The demo's paper timeline: steps dated in order, within office hours, never after today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.demo.county import load_county_plan
from services.demo.scenario import generate_scenario
from services.demo.standings import ranked_quarter
from services.demo.timeline import STEP_DAYS, NotYet, PaperClock

START = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
ROAD = (
    "propose_disposal",
    "approve_disposal",
    "approve_plan",
    "sign_report",
    "propose_outcome",
    "approve_outcome",
    "approve_filing",
    "record_evidence",
    "record_subject_heard",
    "submit_investigation_report",
    "accept_file",
    "submit_hearing_report",
    "approve_decision",
)


def _walk(key: str, today: datetime | None = None) -> list[datetime]:
    clock = PaperClock(key, START, today=today)
    return [clock.next(action) for action in ROAD]


def test_steps_follow_each_other_within_their_spans_and_office_hours() -> None:
    for index in range(50):
        moments = _walk(f"clue-{index}")
        previous = START
        for action, moment in zip(ROAD, moments, strict=True):
            fewest, most = STEP_DAYS[action]
            assert moment >= previous
            days = (moment.date() - previous.date()).days
            assert fewest <= days <= most or (moment == previous and fewest == 0)
            # 09:00-17:00 in the county (UTC+8) unless it follows a later step the same day.
            assert 1 <= moment.hour < 9 or moment == previous
            previous = moment


def test_the_same_clue_gets_the_same_dates() -> None:
    assert _walk("clue-7") == _walk("clue-7")
    assert _walk("clue-7") != _walk("clue-8")


def test_disposal_is_entered_within_its_one_month_limit() -> None:
    for index in range(200):
        clock = PaperClock(f"clue-{index}", START, today=None)
        clock.next("propose_disposal")
        approved = clock.next("approve_disposal")
        assert approved - START <= timedelta(days=31)


def test_a_step_after_today_has_not_happened_yet() -> None:
    today = START + timedelta(days=20)
    clock = PaperClock("clue-1", START, today=today)
    with pytest.raises(NotYet) as later:
        for action in ROAD:
            assert clock.next(action) <= today
    assert later.value.when > today and "after today" in str(later.value)
    # The clock stays at the last step that did happen.
    assert clock.at <= today


def test_reports_are_registered_within_two_days_of_receipt_and_never_after_the_end() -> None:
    start, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)
    reports = generate_scenario(load_county_plan(), seed=3, count=300, start=start, until=until)
    for report in reports:
        assert report.received_at <= report.registered_at <= until
        assert report.registered_at - report.received_at < timedelta(days=2)


def test_the_ranked_quarter_is_the_last_that_has_ended() -> None:
    quarters = ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]
    assert ranked_quarter(quarters, datetime(2026, 11, 26, tzinfo=UTC)) == "2026Q3"
    assert ranked_quarter(quarters, datetime(2027, 1, 2, tzinfo=UTC)) == "2026Q4"
    assert ranked_quarter(["2026Q1"], datetime(2026, 2, 1, tzinfo=UTC)) == "2026Q1"
    assert ranked_quarter([], datetime(2026, 2, 1, tzinfo=UTC)) == "2026Q1"
