"""Releasing open assignments inside a unit of work: state, audit and event together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.staffing import WorkloadReleased
from services.runtime import audit
from services.runtime.outbox import record_event
from services.staffing.store import casework
from services.staffing.store.tables import AssignmentRow

SOURCE = "xiezuo/staffing"


async def release_assignments(
    session: AsyncSession,
    rows: Sequence[AssignmentRow],
    *,
    county_id: str,
    zone_id: str,
    case_id: str,
    reason: str,
    actor: str,
    at: datetime,
) -> None:
    """End these open assignments (they stop counting as workload) and say so."""
    if not rows:
        return
    # "released" still counts as having worked the case (hearing and review independence).
    casework.close_assignments(rows, state="released", reason=reason, at=at)
    for row in rows:
        session.add(row)
    people = sorted({row.person_id for row in rows})
    stages = sorted({row.stage for row in rows})
    await audit.append(
        session,
        county_id=county_id,
        actor=actor,
        action="workload.released",
        record_type="case",
        record_id=case_id,
        detail={"people": people, "team_stages": stages, "reason": reason},
        at=at,
    )
    record_event(
        session,
        WorkloadReleased(
            county_id=county_id,
            zone_id=zone_id,
            case_id=case_id,
            person_ids=people,
            team_stages=stages,
            reason=reason,
            released_at=at,
        ),
        source=SOURCE,
        occurred_at=at,
    )
