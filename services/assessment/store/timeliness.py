"""Per-case finishes and breaches of time limits, and the within-limit counts derived from them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import TypeAlias

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.timeliness import clock_kpis, supersedes, within_limit
from services.assessment.store.tables import LimitBreach, LimitClock

# (subject, zone, kpi) → the finishing events counted: what `limit_counts` answers.
Derived: TypeAlias = Mapping[tuple[str, str, str], list[str]]


async def record_finish(
    session: AsyncSession,
    *,
    county_id: str,
    case_id: str,
    clock: str,
    zone_id: str,
    township_id: str,
    quarter: Quarter,
    finished_at: datetime,
    event_id: str,
) -> None:
    """Keep the clock's latest finish (a reopened clue disposed again replaces the first)."""
    row = await session.get(LimitClock, (county_id, case_id, clock))
    if row is not None and not supersedes((finished_at, event_id), (row.finished_at, row.event_id)):
        return
    if row is None:
        row = LimitClock(
            county_id=county_id,
            case_id=case_id,
            clock=clock,
            zone_id=zone_id,
            township_id=township_id,
            quarter=str(quarter),
            finished_at=finished_at,
            event_id=event_id,
        )
    else:
        row.zone_id, row.township_id, row.quarter = zone_id, township_id, str(quarter)
        row.finished_at, row.event_id = finished_at, event_id
    session.add(row)


async def record_breach(
    session: AsyncSession,
    *,
    county_id: str,
    case_id: str,
    clock: str,
    deadline_id: str,
    due_at: datetime,
    event_id: str,
) -> None:
    """Keep a breach once per deadline (cases publishes one per deadline)."""
    table = LimitBreach.__table__  # type: ignore[attr-defined]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values(
        county_id=county_id,
        case_id=case_id,
        clock=clock,
        deadline_id=deadline_id,
        due_at=due_at,
        event_id=event_id,
    ).on_conflict_do_nothing()
    await (await session.connection()).execute(statement)


async def _judged(
    session: AsyncSession, county_id: str, quarter: Quarter
) -> list[tuple[LimitClock, bool]]:
    clocks = (
        await session.exec(
            select(LimitClock).where(
                LimitClock.county_id == county_id, LimitClock.quarter == str(quarter)
            )
        )
    ).all()
    if not clocks:
        return []
    breaches: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    query = (
        select(LimitBreach.case_id, LimitBreach.clock, LimitBreach.due_at)
        .join(
            LimitClock,
            (LimitClock.county_id == LimitBreach.county_id)  # type: ignore[arg-type]
            & (LimitClock.case_id == LimitBreach.case_id)
            & (LimitClock.clock == LimitBreach.clock),
        )
        .where(LimitClock.county_id == county_id, LimitClock.quarter == str(quarter))
    )
    for case_id, clock, due_at in (await session.exec(query)).all():
        breaches[(case_id, clock)].append(due_at)
    return [
        (row, within_limit(row.finished_at, breaches[(row.case_id, row.clock)])) for row in clocks
    ]


def _subject(row: LimitClock, level: Level) -> str | None:
    if level is Level.ZONE:
        return row.zone_id
    if level is Level.TOWNSHIP:
        return row.township_id or None
    return None


async def limit_counts(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str | None = None,
) -> dict[tuple[str, str, str], list[str]]:
    """(subject, zone, kpi) → the finishing events counted, for one county, quarter and level."""
    counted: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row, in_time in await _judged(session, county_id, quarter):
        subject = _subject(row, level)
        if subject is None or (subject_id is not None and subject != subject_id):
            continue
        for kpi in clock_kpis(row.clock, in_time):
            counted[(subject, row.zone_id, kpi)].append(row.event_id)
    return dict(counted)
