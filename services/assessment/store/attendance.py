"""The attendance status in force per person and day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.attendance import correction, supersedes
from services.assessment.store.tables import AttendanceDay


async def apply_attendance(
    session: AsyncSession,
    *,
    county_id: str,
    zone_id: str,
    person_id: str,
    day: date,
    status: str,
    recorded_at: datetime,
    event_id: str,
) -> int:
    """Record the status if it is the newest for the day; returns the change in days attended."""
    row = await session.get(AttendanceDay, (county_id, person_id, day))
    if row is None:
        session.add(
            AttendanceDay(
                county_id=county_id,
                person_id=person_id,
                day=day,
                zone_id=zone_id,
                status=status,
                recorded_at=recorded_at,
                event_id=event_id,
            )
        )
        return correction(None, status)
    stored_at = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
    if not supersedes((recorded_at, event_id), (stored_at, row.event_id)):
        return 0
    delta = correction(row.status, status)
    row.status, row.recorded_at, row.event_id, row.zone_id = status, recorded_at, event_id, zone_id
    session.add(row)
    return delta
