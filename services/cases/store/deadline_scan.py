"""The deadline engine's pass: each running deadline warns once and breaches once.

The database is the source of truth: a pass reads the running deadlines, and for each notice
it claims the deadline row (a conditional no-op UPDATE, which serialises scanners and
workflow commands on that row on SQLite and PostgreSQL alike), then writes the notice row
(its primary key makes the notice unique), the outbox event and, for a breach, the new
status, in the same transaction. Notices go out in chunks of up to 100 per transaction
(claims in deadline-id order, so two scanners never deadlock); if another scanner sent one of
a chunk's notices meanwhile, the chunk is redone one notice per transaction. On PostgreSQL the
replicas' notice transactions run one at a time (an advisory lock), so their outbox rows do not
interleave and a zone's notices are published in the order they were committed. A crash before
commit loses nothing; a second scanner finds the notice and does nothing. A deadline already
warned is not looked at again until it falls due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.store.deadlines import RECTIFICATION, send_notice
from services.cases.store.tables import (
    DeadlineNoticeRow,
    DeadlineRow,
    RectificationProgressRow,
    RectificationRow,
)
from services.runtime.db import Database, as_utc

SCANNER = "system:deadline-scan"
# PostgreSQL advisory lock (per database) that serialises the replicas' notice transactions.
NOTICE_TRANSACTION_LOCK = 0x5849455A554F444C  # "XIEZUODL"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanResult:
    """Notices this pass published (deadline ids)."""

    approaching: list[str]
    breached: list[str]


class DeadlineScanner:
    """Publishes DeadlineApproaching and DeadlineBreached from the deadline rows."""

    def __init__(
        self, database: Database, *, batch_size: int = 500, notices_per_transaction: int = 100
    ) -> None:
        self._db = database
        self._batch_size = batch_size
        self._per_transaction = max(1, notices_per_transaction)

    async def scan(self, *, now: datetime) -> ScanResult:
        """One pass over every running deadline whose warning moment has come."""
        result = ScanResult([], [])
        after = ""
        while True:
            candidates = await self._candidates(now, after)
            for first in range(0, len(candidates), self._per_transaction):
                chunk = candidates[first : first + self._per_transaction]
                notices = [
                    (deadline_id, "breached" if as_utc(due_at) <= now else "approaching")
                    for deadline_id, due_at in chunk
                ]
                for deadline_id, notice in await self._notify_all(notices, now):
                    getattr(result, notice).append(deadline_id)
            if len(candidates) < self._batch_size:
                return result
            after = candidates[-1][0]

    async def _candidates(self, now: datetime, after: str) -> list[tuple[str, datetime]]:
        async with self._db.session() as session:
            breached = select(DeadlineNoticeRow.deadline_id).where(
                DeadlineNoticeRow.notice == "breached"
            )
            warned = select(DeadlineNoticeRow.deadline_id).where(
                DeadlineNoticeRow.notice == "approaching"
            )
            rows = await session.exec(
                select(DeadlineRow.deadline_id, DeadlineRow.due_at)
                .where(
                    col(DeadlineRow.ended_at).is_(None),
                    col(DeadlineRow.warn_at) <= now,
                    col(DeadlineRow.deadline_id) > after,
                    col(DeadlineRow.deadline_id).not_in(breached),
                    # Warned already and not yet due: nothing to send until it falls due.
                    or_(
                        col(DeadlineRow.due_at) <= now,
                        col(DeadlineRow.deadline_id).not_in(warned),
                    ),
                )
                .order_by(col(DeadlineRow.deadline_id))
                .limit(self._batch_size)
            )
            return [(deadline_id, due_at) for deadline_id, due_at in rows.all()]

    async def _notify_all(
        self, notices: list[tuple[str, str]], now: datetime
    ) -> list[tuple[str, str]]:
        """Send a chunk of notices in one transaction (a commit each would bound the pace)."""
        try:
            async with self._db.transaction() as session:
                if not self._db.is_sqlite:
                    await _one_scanner_at_a_time(session)
                return [
                    (deadline_id, notice)
                    for deadline_id, notice in notices
                    if await self._notify(session, deadline_id, notice, now)
                ]
        except IntegrityError:
            if len(notices) == 1:
                # Another scanner committed the same notice between our check and insert.
                return []
        # Someone else sent one of them meanwhile: one transaction each, so the rest go out.
        sent: list[tuple[str, str]] = []
        for notice in notices:
            sent.extend(await self._notify_all([notice], now))
        return sent

    async def _notify(
        self, session: AsyncSession, deadline_id: str, notice: str, now: datetime
    ) -> bool:
        """Claim the deadline row and send its notice; False when there is nothing to send."""
        claimed = await session.exec(
            update(DeadlineRow)
            .where(
                col(DeadlineRow.deadline_id) == deadline_id,
                col(DeadlineRow.ended_at).is_(None),
            )
            .values(extensions=DeadlineRow.extensions)
        )
        if claimed.rowcount != 1:
            return False  # met or extended meanwhile
        deadline = (
            await session.exec(
                select(DeadlineRow)
                .where(DeadlineRow.deadline_id == deadline_id)
                .execution_options(populate_existing=True)
            )
        ).one()
        if not await send_notice(session, deadline, notice, at=now, actor=SCANNER):
            return False
        if notice == "breached" and deadline.kind == RECTIFICATION:
            await _escalate(session, deadline, now)
        return True


async def _one_scanner_at_a_time(session: AsyncSession) -> None:
    """Wait until no other replica's notice transaction is open (held until this one ends).

    Without it, two replicas' chunks interleave their outbox rows: one inserts a notice, then
    waits on the county's audit head the other holds, so ids and commit order disagree and a
    zone's notices reach Kafka out of id order. Taken first, before any row lock, so it cannot
    join a deadlock.
    """
    connection = await session.connection()
    await connection.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": NOTICE_TRANSACTION_LOCK}
    )


async def _escalate(session: AsyncSession, deadline: DeadlineRow, now: datetime) -> None:
    """An overdue rectification item goes up to the zone's leadership (and stays flagged)."""
    item = await session.get(RectificationRow, deadline.case_id)
    if item is None or item.status != "open":
        return
    item.escalated = True
    session.add(item)
    session.add(
        RectificationProgressRow(
            item_id=item.item_id,
            at=now,
            actor=SCANNER,
            kind="escalated",
            note=f"overdue since {as_utc(deadline.due_at).date().isoformat()}",
            percent_done=0,
        )
    )
