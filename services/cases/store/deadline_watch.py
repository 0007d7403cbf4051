"""How many running deadlines are in their warning window or past due, per zone and kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, case, cast, func, select
from sqlmodel import col

from services.cases.store.tables import DeadlineRow
from services.runtime.db import Database


@dataclass(frozen=True)
class DeadlinesAtRisk:
    """Running deadlines of one kind in one zone: warned and not yet due, or past due."""

    county_id: str
    zone_id: str
    kind: str
    approaching: int
    breached: int


async def deadlines_at_risk(database: Database, *, now: datetime) -> list[DeadlinesAtRisk]:
    """Count running deadlines whose warning moment (the rules' warn_days) has come."""
    overdue = cast(case((col(DeadlineRow.due_at) <= now, 1), else_=0), Integer)
    query = (
        # SQLAlchemy's select: sqlmodel's stops at four columns.
        select(
            col(DeadlineRow.county_id),
            col(DeadlineRow.zone_id),
            col(DeadlineRow.kind),
            func.count(),
            func.sum(overdue),
        )
        # ix_case_deadline_running (ended_at, warn_at) answers this: the cost follows the
        # open workload, not the history of ended deadlines.
        .where(col(DeadlineRow.ended_at).is_(None), col(DeadlineRow.warn_at) <= now)
        .group_by(col(DeadlineRow.county_id), col(DeadlineRow.zone_id), col(DeadlineRow.kind))
    )
    async with database.session() as session:
        connection = await session.connection()
        rows = (await connection.execute(query)).all()
    return [
        DeadlinesAtRisk(county, zone, kind, int(total) - int(late or 0), int(late or 0))
        for county, zone, kind, total, late in rows
    ]
