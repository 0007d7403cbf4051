"""Time limits on the record: started, met, or superseded by an extension.

A deadline row is one due moment. It ends exactly once: `met` (stopped in time), `extended`
(an approved extension replaced it with a new row due later), or it is `breached` (the
scanner found it past due; it keeps running until the work is done or extended, and stays
breached on the record either way). An extension granted after a breach therefore does not
erase the breach: the breached row ends, and the new row runs (and may warn and breach
again) on the extended due date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.ruleset import RuleSet
from services.cases.store.tables import DeadlineNoticeRow, DeadlineRow
from services.contracts.cases import DeadlineApproaching, DeadlineBreached, DeadlineNotice
from services.runtime import audit
from services.runtime.backentry import BACK_ENTRY_GRACE
from services.runtime.db import as_utc
from services.runtime.outbox import record_event

SOURCE = "xiezuo/cases"
JUDGE = "system:deadline"
RECTIFICATION = "rectification"


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
    recorded_at: datetime | None = None,
) -> DeadlineRow:
    """A new running deadline of `kind` on a case file or rectification item.

    `recorded_at` is given for back-entry: the real moment of entry, when `started_at` is
    earlier.
    """
    earlier = (
        await session.exec(
            select(func.count())
            .select_from(DeadlineRow)
            .where(DeadlineRow.case_id == record_id, DeadlineRow.kind == kind)
        )
    ).one()
    deadline = DeadlineRow(
        **_deadline_values(
            f"{record_id}:{kind}:{earlier + 1}",
            record_id=record_id,
            county_id=county_id,
            zone_id=zone_id,
            kind=kind,
            rules=rules,
            due_and_warning=_due_and_warning(rules, kind, started_at, due_at, recorded_at),
            started_at=started_at,
            extensions=extensions,
            supersedes=supersedes,
        )
    )
    session.add(deadline)
    await session.flush()
    return deadline


async def open_first_deadline(
    session: AsyncSession,
    *,
    record_id: str,
    county_id: str,
    zone_id: str,
    kind: str,
    rules: RuleSet,
    started_at: datetime,
    recorded_at: datetime | None = None,
) -> None:
    """The first deadline of `kind` on a record created in this transaction.

    Like open_deadline for a record with no deadlines yet, in one INSERT (no count, no ORM
    flush): the clue consumer opens one per registered clue. A deadline that somehow exists
    already fails the insert instead of being numbered past.
    """
    connection = await session.connection()
    values = first_deadline_row(
        record_id=record_id,
        county_id=county_id,
        zone_id=zone_id,
        kind=kind,
        rules=rules,
        started_at=started_at,
        recorded_at=recorded_at,
    )
    await connection.execute(insert(DeadlineRow).values(**values))


def first_deadline_row(
    *,
    record_id: str,
    county_id: str,
    zone_id: str,
    kind: str,
    rules: RuleSet,
    started_at: datetime,
    recorded_at: datetime | None = None,
    due_at: datetime | None = None,
) -> dict[str, Any]:
    """Every column of the first open deadline of `kind` on a new record (for a Core insert).

    `due_at`: `rules.due(kind, started_at)`, if the caller has it already.
    """
    values = _deadline_values(
        f"{record_id}:{kind}:1",
        record_id=record_id,
        county_id=county_id,
        zone_id=zone_id,
        kind=kind,
        rules=rules,
        due_and_warning=_due_and_warning(rules, kind, started_at, due_at, recorded_at),
        started_at=started_at,
        extensions=0,
        supersedes=None,
    )
    values["ended_at"] = None
    return values


def _deadline_values(
    deadline_id: str,
    *,
    record_id: str,
    county_id: str,
    zone_id: str,
    kind: str,
    rules: RuleSet,
    due_and_warning: tuple[datetime, datetime],
    started_at: datetime,
    extensions: int,
    supersedes: str | None,
) -> dict[str, Any]:
    """The columns of a new open deadline (one place for the ORM and the Core insert)."""
    due, warn_at = due_and_warning
    return {
        "deadline_id": deadline_id,
        "case_id": record_id,
        "county_id": county_id,
        "zone_id": zone_id,
        "kind": kind,
        "rule_version": rules.version,
        "started_at": started_at,
        "due_at": due,
        "warn_at": warn_at,
        "status": "open",
        "extensions": extensions,
        "supersedes": supersedes,
    }


def _due_and_warning(
    rules: RuleSet,
    kind: str,
    started_at: datetime,
    due_at: datetime | None,
    recorded_at: datetime | None,
) -> tuple[datetime, datetime]:
    """A deadline's due and warning moments; a back-entered one already due gets the grace."""
    due = due_at or rules.due(kind, started_at)
    warn_at = rules.warn_at(kind, due)
    if recorded_at is not None and due <= recorded_at:
        warn_at = recorded_at + BACK_ENTRY_GRACE
    return due, warn_at


async def stop_clock(
    session: AsyncSession,
    record_id: str,
    kind: str,
    *,
    now: datetime,
    recorded_at: datetime | None = None,
) -> None:
    """The running deadline of `kind` ends: met in time, or late (a breach stays a breach).

    `now` is when the work was done; `recorded_at` the real moment of entry when later.
    """
    for deadline in await running(session, record_id, kind):
        if deadline.status == "open":
            if now <= as_utc(deadline.due_at):
                deadline.status = "met"
            else:
                # Done after its due moment before any scanner saw it (e.g. entered late).
                await judge_breached(session, deadline, at=recorded_at or now)
        deadline.ended_at = now
        session.add(deadline)


async def judge_breached(session: AsyncSession, deadline: DeadlineRow, *, at: datetime) -> bool:
    """Mark a deadline breached and publish DeadlineBreached once (False: already was)."""
    return await send_notice(session, deadline, "breached", at=at, actor=JUDGE)


async def send_notice(
    session: AsyncSession, deadline: DeadlineRow, notice: str, *, at: datetime, actor: str
) -> bool:
    """Record the notice, publish its event and audit it, unless it was sent before."""
    sent = set(
        (
            await session.exec(
                select(DeadlineNoticeRow.notice).where(
                    DeadlineNoticeRow.deadline_id == deadline.deadline_id
                )
            )
        ).all()
    )
    # A deadline found already past due skips its warning: a late warning says nothing.
    if notice in sent or (notice == "approaching" and "breached" in sent):
        return False
    session.add(
        DeadlineNoticeRow(
            deadline_id=deadline.deadline_id, notice=notice, due_at=deadline.due_at, sent_at=at
        )
    )
    await session.flush()
    if notice == "breached":
        deadline.status = "breached"
        session.add(deadline)
    # The event is stamped when the breach happened (its due moment), not when it was seen.
    occurred = as_utc(deadline.due_at) if notice == "breached" else at
    record_event(session, notice_event(deadline, notice), source=SOURCE, occurred_at=occurred)
    await audit.append(
        session,
        county_id=deadline.county_id,
        actor=actor,
        action=f"deadline.{notice}",
        record_type=RECTIFICATION if deadline.kind == RECTIFICATION else "case",
        record_id=deadline.case_id,
        detail={"deadline_id": deadline.deadline_id, "due_at": as_utc(deadline.due_at).isoformat()},
        at=at,
    )
    return True


def notice_event(deadline: DeadlineRow, notice: str) -> DeadlineNotice:
    """DeadlineApproaching or DeadlineBreached for a deadline row."""
    kind = DeadlineBreached if notice == "breached" else DeadlineApproaching
    return kind(
        county_id=deadline.county_id,
        zone_id=deadline.zone_id,
        deadline_id=deadline.deadline_id,
        case_id=deadline.case_id,
        kind=deadline.kind,
        due_at=as_utc(deadline.due_at),
        rule_version=deadline.rule_version,
        record_type=RECTIFICATION if deadline.kind == RECTIFICATION else "case",
    )


async def extend_clock(
    session: AsyncSession,
    record_id: str,
    kind: str,
    days: int,
    rules: RuleSet,
    *,
    now: datetime,
    recorded_at: datetime | None = None,
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
            due_at=as_utc(deadline.due_at) + timedelta(days=days),
            extensions=deadline.extensions + 1,
            supersedes=deadline.deadline_id,
            recorded_at=recorded_at,
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
