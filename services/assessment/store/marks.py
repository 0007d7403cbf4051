"""Qualitative marks entered by assessors."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.store.tables import QualitativeMark


async def record_mark(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str,
    assessor: str,
    points: Decimal,
    reason: str,
    recorded_at: datetime,
) -> None:
    """Store an assessor's mark; a later mark by the same assessor replaces their earlier one."""
    key = (county_id, str(quarter), level.value, subject_id, assessor)
    row = await session.get(QualitativeMark, key)
    if row is None:
        row = QualitativeMark(
            county_id=county_id,
            quarter=str(quarter),
            level=level.value,
            subject_id=subject_id,
            assessor=assessor,
            points=points,
            reason=reason,
            recorded_at=recorded_at,
        )
    else:
        row.points, row.reason, row.recorded_at = points, reason, recorded_at
    session.add(row)


async def marks_by_subject(
    session: AsyncSession, *, county_id: str, quarter: Quarter, level: Level
) -> dict[str, list[Decimal]]:
    """Every assessor's current mark per subject."""
    query = select(QualitativeMark).where(
        QualitativeMark.county_id == county_id,
        QualitativeMark.quarter == str(quarter),
        QualitativeMark.level == level.value,
    )
    marks: dict[str, list[Decimal]] = defaultdict(list)
    for row in (await session.exec(query)).all():
        marks[row.subject_id].append(Decimal(row.points))
    return dict(marks)
