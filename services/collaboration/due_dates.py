"""The due-date scan: each open letter is reminded once and found overdue once, per side.

Both counties watch the same due date, each on its own row: the asked county must answer, the
asking county waits for the answer. A notice is claimed by a conditional UPDATE (the column
still empty), so two replicas never publish it twice; the event is written in the same
transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import update
from sqlmodel import col, select

from services.collaboration.domain.letter import LetterState
from services.collaboration.letters import LetterDesk
from services.collaboration.metrics import LetterMetrics
from services.collaboration.store.network import current_network
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import LetterDueSoon, LetterOverdue
from services.runtime import audit
from services.runtime.backentry import BACK_ENTRY_GRACE, CLOCK_SKEW
from services.runtime.db import Database, as_utc
from services.runtime.outbox import record_event

SOURCE = "xiezuo/collaboration"
SCANNER = "system:letter-due-scan"
# Reminded when the due date is this many working days away (on the county's own calendar).
REMINDER_WORKING_DAYS = 2
# Looked at from this many calendar days ahead: two working days even across a long holiday.
HORIZON_DAYS = 16
# Open letters: not yet answered or declined.
OPEN = (LetterState.SENT, LetterState.RECEIVED, LetterState.ACCEPTED)
log = logging.getLogger(__name__)


def just_back_entered(row: LetterRow, now: datetime) -> bool:
    """Whether the letter's last step was entered after the fact (补录) less than a grace ago.

    A letter entered on paper dates is often past its due date already while the office enters
    the step that met it; the scan (on the real clock) waits BACK_ENTRY_GRACE before judging.
    """
    entered = as_utc(row.updated_at)
    if entered <= now - BACK_ENTRY_GRACE:
        return False
    steps = [as_utc(at) for at in (row.requested_at, row.approved_at, row.decided_at) if at]
    return bool(steps) and max(steps) < entered - CLOCK_SKEW


@dataclass(frozen=True)
class DueNotices:
    """What one pass published: (county, letter id) of each notice."""

    reminded: list[tuple[str, str]]
    overdue: list[tuple[str, str]]


class DueDateScan:
    """Publishes LetterDueSoon and LetterOverdue from the letter rows."""

    def __init__(
        self, database: Database, desk: LetterDesk, metrics: LetterMetrics | None = None
    ) -> None:
        self._db = database
        self._desk = desk
        self._metrics = metrics

    async def scan(self, *, now: datetime) -> DueNotices:
        """One pass over the open letters served here that are due soon or overdue.

        Each side counts days on its own county's calendar, in its time zone.
        """
        notices = DueNotices([], [])
        async with self._db.session() as session:
            network = await current_network(session)
            if network is None:
                return notices
            horizon = date.fromordinal(now.date().toordinal() + HORIZON_DAYS)
            rows = (
                await session.exec(
                    select(LetterRow).where(
                        col(LetterRow.due_date) <= horizon,
                        col(LetterRow.state).in_([state.value for state in OPEN]),
                        col(LetterRow.county_id).in_(sorted(self._desk.keys.counties)),
                        col(LetterRow.overdue_at).is_(None),
                    )
                )
            ).all()
        for row in rows:
            if just_back_entered(row, now):
                continue
            calendar = self._desk.calendar(network, row.county_id)
            today = calendar.local_date(now)
            if today > row.due_date:
                if await self._notify(row, "overdue_at", LetterOverdue, now):
                    notices.overdue.append((row.county_id, row.letter_id))
                continue
            near = calendar.add_working_days(today, REMINDER_WORKING_DAYS) >= row.due_date
            due_soon = row.reminded_at is None and near
            if due_soon and await self._notify(row, "reminded_at", LetterDueSoon, now):
                notices.reminded.append((row.county_id, row.letter_id))
        return notices

    async def _notify(
        self, row: LetterRow, column: str, notice: type[LetterDueSoon], now: datetime
    ) -> bool:
        async with self._db.transaction() as session:
            claimed = await session.exec(
                update(LetterRow)
                .where(
                    col(LetterRow.county_id) == row.county_id,
                    col(LetterRow.letter_id) == row.letter_id,
                    getattr(LetterRow, column).is_(None),
                )
                .values({column: now})
            )
            if claimed.rowcount != 1:
                return False  # another replica sent it
            record_event(
                session,
                notice(
                    county_id=row.county_id,
                    zone_id=row.zone_id or "*",
                    letter_id=row.letter_id,
                    direction=row.direction,
                    counterpart_county=row.counterpart_county,
                    kind=row.kind,
                    due_date=row.due_date,
                ),
                source=SOURCE,
            )
            await audit.append(
                session,
                county_id=row.county_id,
                actor=SCANNER,
                action="letter.overdue" if column == "overdue_at" else "letter.due_soon",
                record_type="letter",
                record_id=row.letter_id,
                detail={"due_date": row.due_date.isoformat()},
                at=now,
            )
        if self._metrics is not None and column == "overdue_at":
            asker, asked = (
                (row.county_id, row.counterpart_county)
                if row.direction == "outbound"
                else (row.counterpart_county, row.county_id)
            )
            self._metrics.step(
                from_county=asker, to_county=asked, kind=row.kind, step=f"overdue_{row.direction}"
            )
        return True
