"""Rectification items on the record: opened, reported on, verified, each once per key."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain import rectification as rules_of
from services.cases.domain.rectification import ProgressReport
from services.cases.domain.ruleset import RuleSet
from services.cases.store.deadlines import open_deadline, stop_clock
from services.cases.store.tables import (
    RectificationProgressRow,
    RectificationReceiptRow,
    RectificationRow,
)
from services.contracts.cases import RectificationClosed, RectificationOpened
from services.runtime import audit
from services.runtime.db import Database, as_utc
from services.runtime.outbox import record_event

SOURCE = "xiezuo/cases"
AuthorizeItem = Callable[[RectificationRow], None]


class RectificationKeyReused(Exception):
    """The idempotency key was used before for a different rectification command."""


class RectificationMissing(Exception):
    """No such rectification item."""


@dataclass(frozen=True)
class NewRectification:
    """What opening an item needs."""

    county_id: str
    zone_id: str
    township_id: str
    source: str
    source_ref: str
    owner_unit: str
    finding: str


@dataclass(frozen=True)
class RectificationRecord:
    """An item with its progress reports, verifications and escalations."""

    row: RectificationRow
    progress: list[RectificationProgressRow]


@dataclass(frozen=True)
class Receipt:
    """Who sends which command under which key."""

    county_id: str
    key: str
    digest: str


class RectificationDesk:
    """Opening, progress, verification and audited reads of rectification items."""

    def __init__(self, database: Database, rules: Callable[[datetime], RuleSet]) -> None:
        self._db = database
        self._rules = rules

    async def open(
        self, item: NewRectification, *, receipt: Receipt, actor: str, authorize: AuthorizeItem
    ) -> RectificationRecord:
        """Open an item with its due date from the rules in force, once per key."""
        now = datetime.now(UTC)
        rules = self._rules(now)
        async with self._db.transaction() as session:
            row = RectificationRow(
                item_id=f"rect-{uuid.uuid4().hex[:16]}",
                county_id=item.county_id,
                zone_id=item.zone_id,
                township_id=item.township_id,
                source=item.source,
                source_ref=item.source_ref,
                owner_unit=item.owner_unit,
                finding=item.finding,
                status=rules_of.OPEN,
                rule_version=rules.version,
                opened_by=actor,
                opened_at=now,
                due_at=rules.due(rules_of.TIME_LIMIT, now),
                escalated=False,
            )
            authorize(row)
            earlier = await _receipt(session, receipt)
            if earlier is not None:
                return await _record(session, earlier)
            session.add(row)
            await open_deadline(
                session,
                record_id=row.item_id,
                county_id=row.county_id,
                zone_id=row.zone_id,
                kind=rules_of.TIME_LIMIT,
                rules=rules,
                started_at=now,
                due_at=row.due_at,
            )
            record_event(
                session,
                RectificationOpened(
                    **_common(row), opened_by=actor, opened_at=now, due_at=row.due_at
                ),
                source=SOURCE,
                occurred_at=now,
            )
            await _audit(session, row, actor, "rectification.opened", now)
            _keep(session, receipt, row.item_id)
            return await _record(session, row.item_id)

    async def report(
        self,
        item_id: str,
        *,
        note: str,
        percent_done: int,
        receipt: Receipt,
        actor: str,
        authorize: AuthorizeItem,
    ) -> RectificationRecord:
        """Record the owner unit's progress report, once per key."""

        def step(row: RectificationRow) -> tuple[ProgressReport, str]:
            return rules_of.progress(row.status, note, percent_done), row.status

        return await self._step(item_id, step, receipt=receipt, actor=actor, authorize=authorize)

    async def verify(
        self,
        item_id: str,
        *,
        done: bool,
        note: str,
        receipt: Receipt,
        actor: str,
        authorize: AuthorizeItem,
    ) -> RectificationRecord:
        """Record the zone's verification; a verified completion closes the item."""

        def step(row: RectificationRow) -> tuple[ProgressReport, str]:
            return rules_of.verification(row.status, done, note)

        return await self._step(item_id, step, receipt=receipt, actor=actor, authorize=authorize)

    async def _step(
        self,
        item_id: str,
        step: Callable[[RectificationRow], tuple[ProgressReport, str]],
        *,
        receipt: Receipt,
        actor: str,
        authorize: AuthorizeItem,
    ) -> RectificationRecord:
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            # Claim the row first: serialises steps on one item (and the scanner's escalation).
            await session.exec(
                update(RectificationRow)
                .where(col(RectificationRow.item_id) == item_id)
                .values(status=RectificationRow.status)
            )
            row = (
                await session.exec(
                    select(RectificationRow)
                    .where(RectificationRow.item_id == item_id)
                    .execution_options(populate_existing=True)
                )
            ).first()
            if row is None or row.county_id != receipt.county_id:
                raise RectificationMissing(item_id)
            authorize(row)
            earlier = await _receipt(session, receipt)
            if earlier is not None:
                if earlier != item_id:
                    raise RectificationKeyReused(receipt.key)
                return await _record(session, item_id)
            report, status = step(row)
            session.add(
                RectificationProgressRow(
                    item_id=item_id,
                    at=now,
                    actor=actor,
                    kind=report.kind,
                    note=report.note,
                    percent_done=report.percent_done,
                )
            )
            if status == rules_of.CLOSED:
                await self._close(session, row, actor, now)
            await _audit(session, row, actor, f"rectification.{report.kind}", now)
            _keep(session, receipt, item_id)
            return await _record(session, item_id)

    async def _close(
        self, session: AsyncSession, row: RectificationRow, actor: str, now: datetime
    ) -> None:
        row.status = rules_of.CLOSED
        row.closed_at = now
        session.add(row)
        await stop_clock(session, row.item_id, rules_of.TIME_LIMIT, now=now)
        record_event(
            session,
            RectificationClosed(
                **_common(row),
                due_at=row.due_at,
                verified_by=actor,
                closed_at=now,
                overdue=now > as_utc(row.due_at),
            ),
            source=SOURCE,
            occurred_at=now,
        )

    async def get(
        self, item_id: str, *, actor: str, authorize: AuthorizeItem
    ) -> RectificationRecord | None:
        """One item with its progress, if the caller may see it; the read is audited."""
        async with self._db.transaction() as session:
            row = await session.get(RectificationRow, item_id)
            if row is None:
                return None
            authorize(row)
            await _audit(session, row, actor, "rectification.read", datetime.now(UTC))
            return await _record(session, item_id)

    async def page(
        self,
        *,
        county_id: str,
        zone_ids: Sequence[str] | None,
        open_only: bool,
        after: str,
        limit: int,
        actor: str,
    ) -> list[RectificationRecord]:
        """Items of a county (optionally some zones) in id order after a cursor."""
        async with self._db.transaction() as session:
            query = select(RectificationRow).where(
                RectificationRow.county_id == county_id,
                col(RectificationRow.item_id) > after,
            )
            if zone_ids is not None:
                query = query.where(col(RectificationRow.zone_id).in_(list(zone_ids)))
            if open_only:
                query = query.where(RectificationRow.status == rules_of.OPEN)
            rows = (
                await session.exec(query.order_by(col(RectificationRow.item_id)).limit(limit))
            ).all()
            now = datetime.now(UTC)
            records = []
            for row in rows:
                await _audit(session, row, actor, "rectification.read", now)
                records.append(await _record(session, row.item_id))
            return records


def _common(row: RectificationRow) -> dict[str, str]:
    return {
        "county_id": row.county_id,
        "zone_id": row.zone_id,
        "item_id": row.item_id,
        "township_id": row.township_id,
        "source": row.source,
        "source_ref": row.source_ref,
        "owner_unit": row.owner_unit,
        "rule_version": row.rule_version,
    }


async def _receipt(session: AsyncSession, receipt: Receipt) -> str | None:
    """The item a key was used for (the same command again), or None for a new key."""
    found = await session.get(RectificationReceiptRow, (receipt.county_id, receipt.key))
    if found is None:
        return None
    if found.request_digest != receipt.digest:
        raise RectificationKeyReused(receipt.key)
    return found.item_id


def _keep(session: AsyncSession, receipt: Receipt, item_id: str) -> None:
    session.add(
        RectificationReceiptRow(
            county_id=receipt.county_id,
            idempotency_key=receipt.key,
            item_id=item_id,
            request_digest=receipt.digest,
        )
    )


async def _record(session: AsyncSession, item_id: str) -> RectificationRecord:
    await session.flush()
    row = await session.get(RectificationRow, item_id)
    assert row is not None
    progress = (
        await session.exec(
            select(RectificationProgressRow)
            .where(RectificationProgressRow.item_id == item_id)
            .order_by(col(RectificationProgressRow.id))
        )
    ).all()
    return RectificationRecord(row, list(progress))


async def _audit(
    session: AsyncSession, row: RectificationRow, actor: str, action: str, now: datetime
) -> None:
    await audit.append(
        session,
        county_id=row.county_id,
        actor=actor,
        action=action,
        record_type="rectification",
        record_id=row.item_id,
        detail={"status": row.status},
        at=now,
    )
