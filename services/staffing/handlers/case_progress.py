"""Cases' workflow steps → open assignments released when a team's work on a case is over."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.cases import CaseStepRecorded
from services.runtime.envelope import Envelope
from services.staffing.domain.workload import WorkloadRelease
from services.staffing.releasing import release_assignments
from services.staffing.store import casework


class CaseProgressHandler:
    """Frees the workload of teams whose case closed, was decided, transferred or moved on."""

    def __init__(self, rule: WorkloadRelease) -> None:
        self._rule = rule

    async def __call__(
        self, session: AsyncSession, event: CaseStepRecorded, envelope: Envelope
    ) -> None:
        """Apply the step in the consumer's transaction (a redelivery finds nothing open)."""
        teams = self._rule.teams_released(event.to_stage)
        if not teams:
            return
        released = [
            row
            for row in await casework.open_case_assignments(session, event.case_id)
            if row.stage in teams
        ]
        await release_assignments(
            session,
            released,
            county_id=event.county_id,
            zone_id=event.zone_id,
            case_id=event.case_id,
            reason=f"case entered {event.to_stage} ({event.action}); rule {self._rule.version}",
            actor=f"event:{envelope.source}",
            at=datetime.now(UTC),
        )
