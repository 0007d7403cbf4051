"""Help between counties (协查函): what one letter event says, and the KPIs it adds up to.

Assessment keeps, per county and letter, only county ids, the asking case's zone, the kind and
three moments (approved, answered, overdue); never the question, fields, findings or case id.
Each event fills one slot of one row; a slot keeps its earliest (moment, event id), so the
ledger is the same whatever order the events arrive in.
"""

from __future__ import annotations

import enum
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.assessment.domain.facts import NOT_A_ZONE
from services.assessment.domain.kpis import CollaborationKpi
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.contracts.base import IntegrationEvent
from services.contracts.collaboration import (
    AssistanceAnswered,
    LetterAnswered,
    LetterOverdue,
    LetterSent,
)

# The county-wide row of a summary (and the zone of a letter whose zone is not known).
COUNTY_WIDE = "*"
SECONDS_PER_DAY = 86400


class Side(enum.StrEnum):
    """Which end of a letter the county is at."""

    ASKING = "asking"
    ASKED = "asked"


class Slot(enum.StrEnum):
    """The moment an event records on a letter's row."""

    SENT = "sent"
    ANSWERED = "answered"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class LetterFact:
    """One event's contribution to one county's row of one letter."""

    county_id: str
    letter_id: str
    side: Side
    slot: Slot
    at: datetime
    quarter: Quarter
    counterpart_county: str
    kind: str
    zone_id: str = COUNTY_WIDE


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _due_moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def letter_fact(event: IntegrationEvent, calendar: AssessmentCalendar) -> LetterFact | None:
    """The row slot a collaboration event fills, or None for an event that counts nothing."""
    if isinstance(event, LetterSent):
        # Published by the asking county (from_county) when its leadership approved the letter.
        return LetterFact(
            county_id=event.from_county,
            letter_id=event.letter_id,
            side=Side.ASKING,
            slot=Slot.SENT,
            at=_utc(event.approved_at),
            quarter=calendar.quarter_of(event.approved_at),
            counterpart_county=event.county_id,
            kind=event.kind,
        )
    if isinstance(event, LetterAnswered):
        # Published by the answering county (from_county): help given. The asked county's
        # team is not drawn by zone yet, so it counts at county level.
        return LetterFact(
            county_id=event.from_county,
            letter_id=event.letter_id,
            side=Side.ASKED,
            slot=Slot.ANSWERED,
            at=_utc(event.answered_at),
            quarter=calendar.quarter_of(event.answered_at),
            counterpart_county=event.county_id,
            kind="",
        )
    if isinstance(event, AssistanceAnswered):
        # The asking county verified the answer: help received, with the case's zone.
        return LetterFact(
            county_id=event.county_id,
            letter_id=event.letter_id,
            side=Side.ASKING,
            slot=Slot.ANSWERED,
            at=_utc(event.answered_at),
            quarter=calendar.quarter_of(event.answered_at),
            counterpart_county=event.answered_by_county,
            kind=event.kind,
            zone_id=event.zone_id,
        )
    if isinstance(event, LetterOverdue):
        # Counted in the quarter of the due date it missed (the scan's time is not the breach's).
        side = Side.ASKING if event.direction == "outbound" else Side.ASKED
        return LetterFact(
            county_id=event.county_id,
            letter_id=event.letter_id,
            side=side,
            slot=Slot.OVERDUE,
            at=_due_moment(event.due_date),
            quarter=Quarter.of_day(event.due_date),
            counterpart_county=event.counterpart_county,
            kind=event.kind,
            zone_id=event.zone_id if side is Side.ASKING else COUNTY_WIDE,
        )
    return None


@dataclass(frozen=True)
class LetterRow:
    """What the ledger holds for one county's end of one letter (slots may be empty)."""

    county_id: str
    letter_id: str
    side: Side
    zone_id: str
    sent_at: datetime | None = None
    sent_quarter: str | None = None
    sent_event: str | None = None
    answered_at: datetime | None = None
    answered_quarter: str | None = None
    answered_event: str | None = None
    overdue_quarter: str | None = None
    overdue_event: str | None = None


@dataclass
class CollaborationSummary:
    """One county's (or one of its zones') help between counties in one quarter."""

    letters_sent: int = 0
    letters_answered_for_us: int = 0
    letters_answered_by_us: int = 0
    letters_overdue: int = 0
    letters_overdue_for_us: int = 0
    # Days from the asking county's approval to the verified answer, answered this quarter.
    approval_to_answer_days: tuple[float, ...] = ()

    @property
    def mean_days_to_answer(self) -> float | None:
        """Mean days from approval to answer (None when nothing was answered)."""
        days = self.approval_to_answer_days
        return round(statistics.fmean(days), 2) if days else None

    @property
    def median_days_to_answer(self) -> float | None:
        """Median days from approval to answer (None when nothing was answered)."""
        days = self.approval_to_answer_days
        return round(statistics.median(days), 2) if days else None


def zone_counts(rows: Iterable[LetterRow], quarter: Quarter) -> dict[tuple[str, str], list[str]]:
    """(zone, kpi) → events counted, for the zone KPIs a scoring scheme may weigh."""
    counted: dict[tuple[str, str], list[str]] = defaultdict(list)
    wanted = str(quarter)
    for row in rows:
        if row.side is not Side.ASKING or row.zone_id in NOT_A_ZONE:
            continue
        if row.answered_quarter == wanted and row.answered_event:
            counted[(row.zone_id, CollaborationKpi.LETTERS_ANSWERED_FOR_US.value)].append(
                row.answered_event
            )
        if row.overdue_quarter == wanted and row.overdue_event:
            counted[(row.zone_id, CollaborationKpi.LETTERS_OVERDUE_FOR_US.value)].append(
                row.overdue_event
            )
    return {key: sorted(ids) for key, ids in counted.items()}


def summarise(rows: Iterable[LetterRow], quarter: Quarter) -> dict[str, CollaborationSummary]:
    """Per zone and county-wide (`*`, which includes every zone) for one county's rows."""
    wanted = str(quarter)
    found: dict[str, CollaborationSummary] = defaultdict(CollaborationSummary)
    days: dict[str, list[float]] = defaultdict(list)

    def add(zone: str, kpi: str) -> None:
        # A zone's count is also the county's; county-only counts go to `*` once.
        for unit in {COUNTY_WIDE, zone}:
            summary = found[unit]
            setattr(summary, kpi, getattr(summary, kpi) + 1)

    for row in rows:
        zone = row.zone_id if row.zone_id not in NOT_A_ZONE else COUNTY_WIDE
        if row.side is Side.ASKING:
            # The letter names no zone when sent: letters_sent is a county count.
            if row.sent_quarter == wanted:
                add(COUNTY_WIDE, "letters_sent")
            if row.answered_quarter == wanted:
                add(zone, "letters_answered_for_us")
                if row.sent_at is not None and row.answered_at is not None:
                    elapsed = (row.answered_at - row.sent_at).total_seconds() / SECONDS_PER_DAY
                    for unit in {COUNTY_WIDE, zone}:
                        days[unit].append(elapsed)
            if row.overdue_quarter == wanted:
                add(zone, "letters_overdue_for_us")
        else:
            if row.answered_quarter == wanted:
                add(COUNTY_WIDE, "letters_answered_by_us")
            if row.overdue_quarter == wanted:
                add(COUNTY_WIDE, "letters_overdue")
    for unit, values in days.items():
        found[unit].approval_to_answer_days = tuple(sorted(values))
    return dict(found)
