"""Time limits on the record: started, met, or superseded by an extension.

A deadline row is one due moment. It ends exactly once: `met` (stopped in time), `extended`
(an approved extension replaced it with a new row due later), or it is `breached` (the
scanner found it past due; it keeps running until the work is done or extended, and stays
breached on the record either way). An extension granted after a breach therefore does not
erase the breach: the breached row ends, and the new row runs (and may warn and breach
again) on the extended due date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.ruleset import RuleSet
from services.cases.store.tables import DeadlineRow


async def open_deadline(
    session: AsyncSession,
    *,
    record_id: str,
    county_id: str,
    zone_id: str,
    kind: str,
    rules: RuleSet,
    started_at: datetime,
    due_at: datetime | None = None,
    extensions: int = 0,
    supersedes: str | None = None,
) -> DeadlineRow:
    """A new running deadline of `kind` on a case file or rectification item."""
    earlier = (
        await session.exec(
            select(func.count())
            .select_from(DeadlineRow)
            .where(DeadlineRow.case_id == record_id, DeadlineRow.kind == kind)
        )
    ).one()
    due = due_at or rules.due(kind, started_at)
    deadline = DeadlineRow(
        deadline_id=f"{record_id}:{kind}:{earlier + 1}",
        case_id=record_id,
        county_id=county_id,
        zone_id=zone_id,
        kind=kind,
        rule_version=rules.version,
        started_at=started_at,
        due_at=due,
        warn_at=rules.warn_at(kind, due),
        status="open",
        extensions=extensions,
        supersedes=supersedes,
    )
    session.add(deadline)
    await session.flush()
    return deadline


async def stop_clock(session: AsyncSession, record_id: str, kind: str, *, now: datetime) -> None:
    """The running deadline of `kind` is met (a breached one stays breached on the record)."""
    for deadline in await running(session, record_id, kind):
        if deadline.status == "open":
            deadline.status = "met"
        deadline.ended_at = now
        session.add(deadline)


async def extend_clock(
    session: AsyncSession, record_id: str, kind: str, days: int, rules: RuleSet, *, now: datetime
) -> None:
    """Replace the running deadline of `kind` by one due `days` later than it was."""
    for deadline in await running(session, record_id, kind):
        if deadline.status == "open":
            deadline.status = "extended"
        deadline.ended_at = now
        session.add(deadline)
        await open_deadline(
            session,
            record_id=record_id,
            county_id=deadline.county_id,
            zone_id=deadline.zone_id,
            kind=kind,
            rules=rules,
            started_at=now,
            due_at=aware(deadline.due_at) + timedelta(days=days),
            extensions=deadline.extensions + 1,
            supersedes=deadline.deadline_id,
        )


async def running(session: AsyncSession, record_id: str, kind: str) -> list[DeadlineRow]:
    """The deadlines of `kind` on a record that have not ended."""
    return list(
        (
            await session.exec(
                select(DeadlineRow).where(
                    DeadlineRow.case_id == record_id,
                    DeadlineRow.kind == kind,
                    col(DeadlineRow.ended_at).is_(None),
                )
            )
        ).all()
    )


def aware(moment: datetime) -> datetime:
    """A UTC-aware moment (SQLite hands back naive datetimes; everything is stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def end_by_link(session: AsyncSession, record_id: str, *, now: datetime) -> list[str]:
    """End every running deadline of a clue closed as a duplicate (`met_by_link`).

    Neither met in time nor breached: the duty passed to the surviving clue, whose own
    deadline keeps running. A deadline already breached stays `breached` on the record.
    """
    ended: list[str] = []
    rows = await session.exec(
        select(DeadlineRow).where(
            DeadlineRow.case_id == record_id, col(DeadlineRow.ended_at).is_(None)
        )
    )
    for deadline in rows.all():
        if deadline.status == "open":
            deadline.status = "met_by_link"
        deadline.ended_at = now
        session.add(deadline)
        ended.append(deadline.deadline_id)
    return ended
