"""A step of a joint investigation (联合审查调查) with another county → this case's history.

Collaboration publishes JointCaseNoted inside this county only, with this county's own case
id (the other county's never crosses); the step names the other county, the kind, both shares
of the joint team as person ids, and the outcome or decline ground. It changes no stage: the
joint case is worked inside each county's own case file.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.store import codec
from services.cases.store.tables import CaseFileRow
from services.cases.store.workflow import event_step_moment, record_step
from services.contracts.collaboration import JointCaseNoted
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


async def on_joint_case_noted(
    session: AsyncSession, event: JointCaseNoted, envelope: Envelope
) -> None:
    """Add the joint case's step to the case file's history (and its audit entry)."""
    row = (
        await session.exec(
            select(CaseFileRow).where(
                col(CaseFileRow.case_id) == event.case_id,
                col(CaseFileRow.county_id) == event.county_id,
            )
        )
    ).first()
    if row is None:
        # Leadership named a case this county does not have: parked for an operator.
        raise PoisonEvent(f"no case file {event.case_id[:64]!r} in {event.county_id[:64]!r}")
    stage = codec.decode(row.state).stage
    now, recorded_at = await event_step_moment(session, row, datetime.now(UTC))
    detail: dict[str, object] = {
        "joint_id": event.joint_id,
        "partner_county": event.partner_county,
        "kind": event.kind,
    }
    if event.step == "team_drawn":
        detail["own_member_ids"] = event.own_member_ids
        detail["partner_member_ids"] = event.partner_member_ids
    if event.outcome is not None:
        detail["outcome"] = event.outcome
    if event.ground:
        detail["ground"] = event.ground
    await record_step(
        session,
        row,
        actor=f"collaboration:{envelope.source}",
        action=f"joint_case_{event.step}",
        from_stage=stage,
        to_stage=stage,
        event="JointCaseNoted",
        reason="",
        detail=detail,
        now=now,
        recorded_at=recorded_at,
    )
