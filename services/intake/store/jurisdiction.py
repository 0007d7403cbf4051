"""分级负责: a report about an official managed above the county is forwarded at reception."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.intake import ReportForwarded
from services.intake.domain.status import ReportStatus
from services.intake.store.exchange import SYSTEM, append_message
from services.intake.store.tables import ReportRow
from services.intake.store.vault import Vault
from services.runtime.outbox import record_event

EVENT_SOURCE = "xiezuo/intake"
# Who forwards a report whose subject the county does not manage: the rules, at reception.
JURISDICTION_ACTOR = "system:jurisdiction"


async def forward_upward(
    session: AsyncSession, vault: Vault, row: ReportRow, body: str, *, now: datetime
) -> None:
    """分级负责: the subject is managed above this county, so the report goes there."""
    row.status, row.status_note = ReportStatus.FORWARDED.value, body
    row.feedback_given_at, row.decided_by = now, JURISDICTION_ACTOR
    await append_message(
        session,
        vault,
        row,
        author=SYSTEM,
        kind="message",
        body=f"Your report was forwarded to {body}, the body responsible.",
        idempotency_key="acceptance:forwarded",
        now=now,
    )
    due = row.forward_due_at or now
    record_event(
        session,
        ReportForwarded(
            county_id=row.county_id,
            zone_id=row.zone_id,
            report_id=row.report_id,
            clue_id=row.clue_id,
            forward_to_body=body,
            reason=f"the subject's cadre-management level ({row.subject_cadre_level}) "
            "is managed above the county",
            forward_due_at=due,
            within_limit=True,
            decided_by=JURISDICTION_ACTOR,
            decided_at=now,
        ),
        source=EVENT_SOURCE,
        occurred_at=now,
    )
