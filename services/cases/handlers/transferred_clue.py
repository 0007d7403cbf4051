"""A clue another county transferred here (线索移送), or the city designated here (指定管辖).

Collaboration publishes it only after verifying the sending county's signature and the
transfer allowlist. It is registered like any clue intake registers (ledger, case file,
disposal clock, audit) with no report behind it in this county, and its first history step
says where it came from.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.tables import CaseFileRow
from services.cases.store.workflow import record_step
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.transfers import TransferredClueArrived
from services.runtime.envelope import Envelope


class TransferredClueHandler:
    """Registers a verified transfer as a new clue of this county (idempotent by clue id)."""

    def __init__(self, clues: ClueRegisteredHandler) -> None:
        self._clues = clues

    async def __call__(
        self, session: AsyncSession, event: TransferredClueArrived, envelope: Envelope
    ) -> None:
        """Register the clue, then record its origin as the first step of its history."""
        if await self._case_file(session, event) is not None:
            return  # registered before: its origin step is there already
        fields = event.fields
        now = datetime.now(UTC)
        township = fields.get("township_of_jurisdiction", "")
        clue = ClueRegistered(
            county_id=event.county_id,
            zone_id=event.zone_id,
            clue_id=event.clue_id,
            report_id="",  # no report in this county: the report stayed with the sender
            township_id=township,
            channel=event.mode,
            allegation_categories=[fields["allegation_category"]],
            subject=ReportedSubject(
                name=fields.get("subject_name", ""),
                post=fields.get("subject_position", ""),
                unit=fields.get("subject_employer", ""),
                township_id=township,
                cadre_level=fields.get("subject_cadre_level", "unknown"),
            ),
            real_name=False,
            received_at=event.sent_at,
            # The disposal clock starts when this county received it, not when it was sent.
            registered_at=now,
        )
        await self._clues(session, clue, envelope)
        row = await self._case_file(session, event)
        if row is None:  # a clue id taken already in this county's ledger: nothing was added
            return
        origin = (
            f"designated by {event.designated_by}, from county {event.from_county}"
            if event.mode == "designation"
            else f"transferred from county {event.from_county}"
        )
        await record_step(
            session,
            row,
            actor=f"county:{event.from_county}",
            action=f"{event.mode}_received",
            from_stage="registered",
            to_stage="registered",
            event="TransferredClueArrived",
            reason=origin,
            detail={
                "from_county": event.from_county,
                "designated_by": event.designated_by,
                "fields": dict(fields),
                "excerpt": event.excerpt,
                "sent_at": event.sent_at.isoformat(),
            },
            now=now,
        )

    @staticmethod
    async def _case_file(
        session: AsyncSession, event: TransferredClueArrived
    ) -> CaseFileRow | None:
        query = select(CaseFileRow).where(
            col(CaseFileRow.case_id) == event.clue_id,
            col(CaseFileRow.county_id) == event.county_id,
        )
        return (await session.exec(query)).first()
