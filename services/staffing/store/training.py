"""Reading and writing training and attendance records."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.staffing.store.records_tables import AttendanceRow, TrainingRow


async def training_page(
    session: AsyncSession, person_id: str, *, after: tuple[date, str] | None, limit: int
) -> list[TrainingRow]:
    """A person's training records by (date, id), after a cursor."""
    query = select(TrainingRow).where(TrainingRow.person_id == person_id)
    if after is not None:
        day, record_id = after
        query = query.where(
            (col(TrainingRow.on_date) > day)
            | ((col(TrainingRow.on_date) == day) & (col(TrainingRow.record_id) > record_id))
        )
    query = query.order_by(col(TrainingRow.on_date), col(TrainingRow.record_id)).limit(limit)
    return list((await session.exec(query)).all())


async def attendance_page(
    session: AsyncSession,
    person_id: str,
    *,
    first: date | None,
    last: date | None,
    after: date | None,
    limit: int,
) -> list[AttendanceRow]:
    """A person's attendance days in a range, after a cursor."""
    query = select(AttendanceRow).where(AttendanceRow.person_id == person_id)
    if first is not None:
        query = query.where(col(AttendanceRow.day) >= first)
    if last is not None:
        query = query.where(col(AttendanceRow.day) <= last)
    if after is not None:
        query = query.where(col(AttendanceRow.day) > after)
    query = query.order_by(col(AttendanceRow.day)).limit(limit)
    return list((await session.exec(query)).all())
