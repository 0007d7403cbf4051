"""Help between counties in assessment: each letter event → one slot of one county's row, and
the KPIs summed from the rows (per zone, county-wide, mean and median days to answer)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime

from services.assessment.domain.collaboration import (
    LetterRow,
    Side,
    Slot,
    letter_fact,
    summarise,
    zone_counts,
)
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.contracts.collaboration import (
    AssistanceAnswered,
    LetterAnswered,
    LetterDueSoon,
    LetterOverdue,
    LetterSent,
)

CALENDAR = AssessmentCalendar()
MARKER = "MARKER-张三-110101"
APPROVED = datetime(2027, 3, 31, 17, tzinfo=UTC)  # 2027-04-01 01:00 in Shanghai: Q2


def sent() -> LetterSent:
    return LetterSent(
        county_id="c-b",
        from_county="c-a",
        letter_id="L1",
        network_version=1,
        kind="verify_fact",
        allowlist_version=1,
        question=f"Does {MARKER} work there?",
        fields={"subject_name": MARKER},
        excerpt=MARKER,
        due_date=date(2027, 4, 15),
        approved_at=APPROVED,
    )


def test_letter_sent_counts_for_the_asking_county_in_the_quarter_of_its_approval() -> None:
    fact = letter_fact(sent(), CALENDAR)
    assert fact is not None
    assert (fact.county_id, fact.side, fact.slot) == ("c-a", Side.ASKING, Slot.SENT)
    assert (fact.counterpart_county, fact.kind, fact.zone_id) == ("c-b", "verify_fact", "*")
    assert fact.quarter == Quarter(2027, 2)
    # Only ids, kind and moments are kept: nothing of the question, fields or excerpt.
    assert MARKER not in repr(asdict(fact))


def test_answers_count_help_given_for_the_answerer_and_help_received_for_the_case_zone() -> None:
    at = datetime(2027, 4, 8, 2, tzinfo=UTC)
    given = letter_fact(
        LetterAnswered(
            county_id="c-a",
            from_county="c-b",
            letter_id="L1",
            network_version=1,
            findings=MARKER,
            answered_at=at,
        ),
        CALENDAR,
    )
    received = letter_fact(
        AssistanceAnswered(
            county_id="c-a",
            zone_id="z-2",
            case_id="case-secret",
            letter_id="L1",
            answered_by_county="c-b",
            kind="verify_fact",
            findings=MARKER,
            attachments=1,
            answered_at=at,
        ),
        CALENDAR,
    )
    assert given is not None and received is not None
    assert (given.county_id, given.side, given.slot, given.zone_id) == (
        "c-b",
        Side.ASKED,
        Slot.ANSWERED,
        "*",
    )
    assert (received.county_id, received.side, received.zone_id) == ("c-a", Side.ASKING, "z-2")
    assert received.counterpart_county == "c-b"
    for fact in (given, received):
        assert MARKER not in repr(asdict(fact))
        assert "case-secret" not in repr(asdict(fact))


def test_overdue_counts_in_the_quarter_of_the_missed_due_date_on_each_side() -> None:
    common = {
        "letter_id": "L1",
        "kind": "verify_fact",
        "due_date": date(2027, 6, 30),
    }
    outbound = letter_fact(
        LetterOverdue(
            county_id="c-a",
            zone_id="z-2",
            direction="outbound",
            counterpart_county="c-b",
            **common,
        ),
        CALENDAR,
    )
    inbound = letter_fact(
        LetterOverdue(
            county_id="c-b",
            zone_id="*",
            direction="inbound",
            counterpart_county="c-a",
            **common,
        ),
        CALENDAR,
    )
    assert outbound is not None and inbound is not None
    assert (outbound.side, outbound.slot, outbound.zone_id) == (Side.ASKING, Slot.OVERDUE, "z-2")
    assert (inbound.side, inbound.zone_id) == (Side.ASKED, "*")
    assert outbound.quarter == inbound.quarter == Quarter(2027, 2)


def test_a_due_soon_reminder_counts_nothing() -> None:
    reminder = LetterDueSoon(
        county_id="c-a",
        zone_id="z-2",
        letter_id="L1",
        direction="outbound",
        counterpart_county="c-b",
        kind="other",
        due_date=date(2027, 6, 30),
    )
    assert letter_fact(reminder, CALENDAR) is None


def _asking(letter: str, zone: str, sent_day: int | None, answered_day: int | None) -> LetterRow:
    def moment(day: int | None) -> datetime | None:
        return None if day is None else datetime(2027, 1, day, 9, tzinfo=UTC)

    return LetterRow(
        county_id="c-a",
        letter_id=letter,
        side=Side.ASKING,
        zone_id=zone,
        sent_at=moment(sent_day),
        sent_quarter="2027Q1" if sent_day else None,
        sent_event=f"s-{letter}" if sent_day else None,
        answered_at=moment(answered_day),
        answered_quarter="2027Q1" if answered_day else None,
        answered_event=f"a-{letter}" if answered_day else None,
    )


def test_summary_per_zone_and_county_with_mean_and_median_days_to_answer() -> None:
    rows = [
        _asking("L1", "z-1", 2, 9),  # 7 days
        _asking("L2", "z-1", 3, 4),  # 1 day
        _asking("L3", "z-2", 3, 13),  # 10 days
        _asking("L4", "*", 5, None),  # sent, not answered: zone unknown
        LetterRow("c-a", "L9", Side.ASKED, "*", answered_quarter="2027Q1", answered_event="g"),
        LetterRow("c-a", "L8", Side.ASKED, "*", overdue_quarter="2027Q1", overdue_event="o"),
        LetterRow("c-a", "L7", Side.ASKING, "z-2", overdue_quarter="2027Q1", overdue_event="o7"),
        # Another quarter counts nothing in 2027Q1.
        LetterRow("c-a", "L6", Side.ASKED, "*", answered_quarter="2027Q2", answered_event="x"),
    ]
    summary = summarise(rows, Quarter(2027, 1))
    county = summary["*"]
    assert county.letters_sent == 4
    assert county.letters_answered_for_us == 3
    assert county.letters_answered_by_us == 1
    assert county.letters_overdue == 1
    assert county.letters_overdue_for_us == 1
    assert county.mean_days_to_answer == 6.0
    assert county.median_days_to_answer == 7.0
    assert summary["z-1"].letters_answered_for_us == 2
    assert summary["z-1"].mean_days_to_answer == 4.0
    assert summary["z-1"].letters_sent == 0
    assert summary["z-2"].letters_overdue_for_us == 1
    assert summary["z-2"].median_days_to_answer == 10.0
    assert zone_counts(rows, Quarter(2027, 1)) == {
        ("z-1", "letters_answered_for_us"): ["a-L1", "a-L2"],
        ("z-2", "letters_answered_for_us"): ["a-L3"],
        ("z-2", "letters_overdue_for_us"): ["o7"],
    }


def test_no_answer_means_no_days() -> None:
    summary = summarise([_asking("L1", "z-1", 2, None)], Quarter(2027, 1))
    assert summary["*"].mean_days_to_answer is None
    assert summary["*"].median_days_to_answer is None
