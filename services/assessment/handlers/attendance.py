"""AttendanceRecorded → days attended, with later corrections replacing earlier records."""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.facts import Fact, increments_of
from services.assessment.domain.kpis import Kpi
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.store.attendance import apply_attendance
from services.assessment.store.projection import apply_increments
from services.contracts.staffing import AttendanceRecorded
from services.runtime.envelope import Envelope


class AttendanceHandler:
    """Counts a person's working days; a correction adds the difference (possibly −1)."""

    def __init__(self, calendar: AssessmentCalendar) -> None:
        self._calendar = calendar

    async def __call__(
        self, session: AsyncSession, event: AttendanceRecorded, envelope: Envelope
    ) -> None:
        """Apply the record in the consumer's transaction."""
        recorded_at = event.recorded_at
        if recorded_at.tzinfo is None:
            recorded_at = recorded_at.replace(tzinfo=UTC)
        delta = await apply_attendance(
            session,
            county_id=event.county_id,
            zone_id=event.zone_id,
            person_id=event.person_id,
            day=event.day,
            status=event.status,
            recorded_at=recorded_at,
            event_id=envelope.id,
        )
        if delta == 0:
            return
        # Noon UTC keeps the local calendar day for the county's quarter (see mappers).
        at = datetime.combine(event.day, time(12), tzinfo=UTC)
        fact = Fact(
            Kpi.ATTENDANCE_DAYS,
            at,
            event.county_id,
            event.zone_id,
            delta=delta,
            person_ids=(event.person_id,),
            count_for_zone=False,
        )
        await apply_increments(session, [(envelope.id, increments_of(fact, self._calendar))])
