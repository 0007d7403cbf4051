"""When each scripted step took effect on the demo's paper timeline (a year entered after the fact).

The demo enters a year's ledger through back-entry (补录): every step is dated when it
happened, so the year's work spreads over its quarters and deadlines are judged on those
dates. A step whose date would fall after today has not happened yet: the clue is still in
progress, as the county's most recent clues are.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

# Days a step takes after the step before it (fewest, most), as a county's offices
# take them. Disposal fits its one-month limit, investigation its 90 days, hearing its month,
# though a long hearing and a slow approval chain can run late, as they do.
STEP_DAYS: dict[str, tuple[int, int]] = {
    "propose_disposal": (2, 14),
    "approve_disposal": (0, 3),
    "record_inquiry_outcome": (7, 25),
    "approve_plan": (1, 4),
    "sign_report": (10, 30),
    # The other members sign the verification report within days of the first.
    "co_sign_report": (0, 3),
    "propose_outcome": (1, 3),
    "approve_outcome": (0, 3),
    "approve_filing": (1, 4),
    "record_evidence": (10, 35),
    "record_subject_heard": (5, 20),
    "submit_investigation_report": (5, 20),
    "accept_file": (1, 5),
    "send_back": (3, 10),
    "submit_hearing_report": (7, 18),
    "approve_decision": (1, 4),
    # 函询: the letter goes out within days, the written reply comes inside 15 working days.
    "send_inquiry_letter": (1, 5),
    "record_inquiry_reply": (5, 14),
    # A stored clue (暂存待查) is looked at again inside its review period.
    "review_stored": (60, 85),
    "notify_unit": (1, 3),
    # 留置 decided in session days into the investigation, approved one level up at once.
    "request_retention": (2, 6),
    "approve_retention": (1, 3),
    "end_retention": (5, 10),
    "request_extension": (20, 30),
    # The retention case keeps inside its clocks: evidence sooner, the extension asked early.
    "retention_evidence": (15, 25),
    "extend_retention": (10, 20),
    # Supplementary investigation (补充调查) fits its one month.
    "supplementary_evidence": (5, 12),
    "approve_extension": (1, 3),
    # After a transfer (移送): the procuratorate decides, or returns the case for a month's
    # supplementary investigation (退回补充调查).
    "record_procuratorate_decision": (15, 30),
    "complete_supplementary": (5, 15),
    # Appeals: filed within the month's window; 复审 answered in a month, 复核 in two.
    "file_appeal": (7, 25),
    "decide_appeal": (15, 28),
    "decide_second_review": (30, 55),
    # Intake's answers to the reporter: acceptance (受理) after registration, the result after
    # the clue concluded; both well inside their 15-working-day limits.
    "decide_acceptance": (1, 7),
    "record_result_feedback": (2, 10),
}
# Office hours: steps land between 09:00 and 17:00 in the county (UTC+8), i.e. from 01:00 UTC.
_OFFICE_OPENS_UTC = 1
_WORKDAY_MINUTES = 8 * 60


class NotYet(Exception):
    """The clue's next step falls after today: its work goes on beyond the replayed year."""

    def __init__(self, action: str, when: datetime) -> None:
        super().__init__(f"{action} is due on {when.date().isoformat()}, after today")
        self.action = action
        self.when = when


class PaperClock:
    """One clue's paper timeline: each step a few days after the one before, never past today."""

    def __init__(self, key: str, start: datetime, *, today: datetime | None) -> None:
        self._key = key
        self._at = start
        self._today = today
        self._steps = 0

    @property
    def at(self) -> datetime:
        """When the clue's latest step took effect."""
        return self._at

    def next(self, action: str, *, late_days: int = 0, pace: str = "") -> datetime:
        """When `action` takes effect; raises NotYet when that is after today.

        `pace` names the STEP_DAYS entry when it is not the action's own; `late_days` delays
        the step past its usual time (a breached time limit).
        """
        fewest, most = STEP_DAYS.get(pace or action, (0, 2))
        fewest, most = fewest + late_days, most + late_days
        self._steps += 1
        # crc32, not random: the same clue gets the same dates in every run and process.
        draw = zlib.crc32(f"{self._key}:{self._steps}:{action}".encode())
        days = fewest + draw % (most - fewest + 1)
        minutes = (draw >> 8) % _WORKDAY_MINUTES
        day = (self._at + timedelta(days=days)).replace(
            hour=_OFFICE_OPENS_UTC, minute=0, second=0, microsecond=0
        )
        when = max(self._at, day + timedelta(minutes=minutes))
        if self._today is not None and when > self._today:
            raise NotYet(action, when)
        self._at = when
        return when
