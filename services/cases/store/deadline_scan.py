"""The deadline engine's pass: each running deadline warns once and breaches once.

The database is the source of truth: a pass reads the running deadlines, and for each notice
it claims the deadline row (a conditional no-op UPDATE, which serialises scanners and
workflow commands on that row on SQLite and PostgreSQL alike), then writes the notice row
(its primary key makes the notice unique), the outbox event and, for a breach, the new
status, in one transaction. A crash before commit loses nothing; a second scanner finds the
notice and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.store.deadlines import aware
from services.cases.store.tables import (
    DeadlineNoticeRow,
    DeadlineRow,
    RectificationProgressRow,
    RectificationRow,
)
from services.contracts.cases import DeadlineApproaching, DeadlineBreached, DeadlineNotice
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.outbox import record_event

SOURCE = "xiezuo/cases"
SCANNER = "system:deadline-scan"
RECTIFICATION = "rectification"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanResult:
    """Notices this pass published (deadline ids)."""

    approaching: list[str]
    breached: list[str]


class DeadlineScanner:
    """Publishes DeadlineApproaching and DeadlineBreached from the deadline rows."""

    def __init__(self, database: Database, *, batch_size: int = 500) -> None:
        self._db = database
        self._batch_size = batch_size

    async def scan(self, *, now: datetime) -> ScanResult:
        """One pass over every running deadline whose warning moment has come."""
        result = ScanResult([], [])
        after = ""
        while True:
            candidates = await self._candidates(now, after)
            for deadline_id, due_at in candidates:
                notice = "breached" if aware(due_at) <= now else "approaching"
                try:
                    sent = await self._notify(deadline_id, notice, now)
                except IntegrityError:
                    # Another scanner committed the same notice between our check and insert.
                    sent = False
                if sent:
                    getattr(result, notice).append(deadline_id)
            if len(candidates) < self._batch_size:
                return result
            after = candidates[-1][0]

    async def _candidates(self, now: datetime, after: str) -> list[tuple[str, datetime]]:
        async with self._db.session() as session:
            breached = select(DeadlineNoticeRow.deadline_id).where(
                DeadlineNoticeRow.notice == "breached"
            )
            rows = await session.exec(
                select(DeadlineRow.deadline_id, DeadlineRow.due_at)
                .where(
                    col(DeadlineRow.ended_at).is_(None),
                    col(DeadlineRow.warn_at) <= now,
                    col(DeadlineRow.deadline_id) > after,
                    col(DeadlineRow.deadline_id).not_in(breached),
                )
                .order_by(col(DeadlineRow.deadline_id))
                .limit(self._batch_size)
            )
            return [(deadline_id, due_at) for deadline_id, due_at in rows.all()]

    async def _notify(self, deadline_id: str, notice: str, now: datetime) -> bool:
        async with self._db.transaction() as session:
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
            sent = set(
                (
                    await session.exec(
                        select(DeadlineNoticeRow.notice).where(
                            DeadlineNoticeRow.deadline_id == deadline_id
                        )
                    )
                ).all()
            )
            # A deadline found already past due skips its warning: a late warning says nothing.
            if notice in sent or (notice == "approaching" and "breached" in sent):
                return False
            session.add(
                DeadlineNoticeRow(
                    deadline_id=deadline_id, notice=notice, due_at=deadline.due_at, sent_at=now
                )
            )
            await session.flush()
            if notice == "breached":
                deadline.status = "breached"
                session.add(deadline)
                if deadline.kind == RECTIFICATION:
                    await _escalate(session, deadline, now)
            record_event(session, _event(deadline, notice), source=SOURCE, occurred_at=now)
            await audit.append(
                session,
                county_id=deadline.county_id,
                actor=SCANNER,
                action=f"deadline.{notice}",
                record_type=RECTIFICATION if deadline.kind == RECTIFICATION else "case",
                record_id=deadline.case_id,
                detail={"deadline_id": deadline_id, "due_at": aware(deadline.due_at).isoformat()},
                at=now,
            )
            return True


def _event(deadline: DeadlineRow, notice: str) -> DeadlineNotice:
    kind = DeadlineBreached if notice == "breached" else DeadlineApproaching
    return kind(
        county_id=deadline.county_id,
        zone_id=deadline.zone_id,
        deadline_id=deadline.deadline_id,
        case_id=deadline.case_id,
        kind=deadline.kind,
        due_at=aware(deadline.due_at),
        rule_version=deadline.rule_version,
        record_type=RECTIFICATION if deadline.kind == RECTIFICATION else "case",
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
            note=f"overdue since {aware(deadline.due_at).date().isoformat()}",
            percent_done=0,
        )
    )
