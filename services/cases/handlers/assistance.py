"""Another county's answer to an assistance letter (协查) → a step in the asking case's history.

Collaboration publishes the answer only after verifying the answering county's signature; the
step records who answered and what was found, and changes no stage.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.store import codec
from services.cases.store.tables import CaseFileRow
from services.cases.store.workflow import event_step_moment, record_step
from services.contracts.collaboration import AssistanceAnswered
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


async def on_assistance_answered(
    session: AsyncSession, event: AssistanceAnswered, envelope: Envelope
) -> None:
    """Add the answer to the case file's history (and its audit entry)."""
    row = (
        await session.exec(
            select(CaseFileRow).where(
                col(CaseFileRow.case_id) == event.case_id,
                col(CaseFileRow.county_id) == event.county_id,
            )
        )
    ).first()
    if row is None:
        # The letter named a case this county does not have: parked for an operator.
        raise PoisonEvent(f"no case file {event.case_id[:64]!r} in {event.county_id[:64]!r}")
    stage = codec.decode(row.state).stage
    now, recorded_at = await event_step_moment(session, row, datetime.now(UTC))
    await record_step(
        session,
        row,
        actor=f"county:{event.answered_by_county}",
        action="assistance_answered",
        from_stage=stage,
        to_stage=stage,
        event="AssistanceAnswered",
        reason="",
        detail={
            "letter_id": event.letter_id,
            "answered_by_county": event.answered_by_county,
            "kind": event.kind,
            "findings": event.findings,
            "attachments": event.attachments,
            "answered_at": event.answered_at.isoformat(),
        },
        now=now,
        recorded_at=recorded_at,
    )
