"""Acceptance decisions and the real-name feedback deadline scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.contracts.base import IntegrationEvent
from services.contracts.intake import ReportAccepted, ReportForwarded, ReportRejected
from services.intake.domain.status import STATUS_AFTER, AcceptanceOutcome, ReportStatus, decidable
from services.intake.store.exchange import SYSTEM, append_message
from services.intake.store.feedback_scan import ACCEPTANCE_FEEDBACK, publish_breaches
from services.intake.store.tables import ReportRow
from services.intake.store.vault import Vault
from services.runtime import audit
from services.runtime.db import Database, as_utc
from services.runtime.outbox import record_event

EVENT_SOURCE = "xiezuo/intake"
_TOLD = {
    AcceptanceOutcome.ACCEPT: "Your report has been accepted and will be handled.",
    AcceptanceOutcome.NOT_ACCEPT: "Your report was not accepted: {note}",
    AcceptanceOutcome.FORWARD: "Your report was forwarded to {note}, the body responsible.",
}


class AlreadyDecided(Exception):
    """The report's acceptance was decided differently before."""


@dataclass(frozen=True)
class AcceptanceDecision:
    """What an officer decided."""

    outcome: AcceptanceOutcome
    ground: str
    reason: str
    forward_to_body: str


class AcceptanceDesk:
    """Records acceptance decisions, tells the reporter and publishes the outcome."""

    def __init__(self, database: Database, vault: Vault) -> None:
        self._db = database
        self._vault = vault

    async def decide(
        self,
        report_id: str,
        decision: AcceptanceDecision,
        *,
        actor: str,
        now: datetime,
        effective_at: datetime | None = None,
    ) -> ReportStatus:
        """Apply the decision once; a repeat of the same decision is answered, not reapplied.

        A back-entered decision (`effective_at`) is dated on paper everywhere but the audit log.
        """
        target = STATUS_AFTER[decision.outcome]
        decided_at = effective_at or now
        async with self._db.transaction() as session:
            row = await session.get(ReportRow, report_id, with_for_update=True)
            if row is None:
                raise LookupError(report_id)
            current = ReportStatus(row.status)
            if not decidable(current):
                if current is not target:
                    raise AlreadyDecided(f"report {report_id} is already {current.value}")
                if not _same_moment(row.feedback_given_at, effective_at):
                    # Part of the retry's fingerprint: another paper moment is another decision.
                    raise AlreadyDecided(
                        f"report {report_id} was already {current.value} at another moment"
                    )
                return current
            note = {
                AcceptanceOutcome.ACCEPT: "",
                AcceptanceOutcome.NOT_ACCEPT: decision.reason,
                AcceptanceOutcome.FORWARD: decision.forward_to_body,
            }[decision.outcome]
            row.status, row.status_note = target.value, note
            row.feedback_given_at, row.decided_by = decided_at, actor
            session.add(row)
            await append_message(
                session,
                self._vault,
                row,
                author=SYSTEM,
                kind="message",
                body=_TOLD[decision.outcome].format(note=note),
                idempotency_key=f"acceptance:{target.value}",
                now=decided_at,
            )
            record_event(
                session,
                _event(row, decision, actor, decided_at),
                source=EVENT_SOURCE,
                occurred_at=decided_at,
            )
            detail: dict[str, object] = {
                "ground": decision.ground,
                "forward_to_body": decision.forward_to_body,
            }
            if effective_at is not None:
                detail |= {"back_entered": True, "effective_at": effective_at.isoformat()}
            await audit.append(
                session,
                county_id=row.county_id,
                actor=actor,
                action=f"report.{decision.outcome.value}",
                record_type="report",
                record_id=report_id,
                detail=detail,
                at=now,
            )
        return target

    async def scan_feedback_deadlines(self, *, now: datetime) -> list[str]:
        """Publish FeedbackDeadlineBreached once for each overdue real-name report."""
        return await publish_breaches(self._db, ACCEPTANCE_FEEDBACK, now=now)


def _same_moment(decided_at: datetime | None, effective_at: datetime | None) -> bool:
    """A repeat names no moment, or the one the decision was entered at."""
    return effective_at is None or (decided_at is not None and as_utc(decided_at) == effective_at)


def _event(
    row: ReportRow, decision: AcceptanceDecision, actor: str, now: datetime
) -> IntegrationEvent:
    common = {
        "county_id": row.county_id,
        "zone_id": row.zone_id,
        "report_id": row.report_id,
        "clue_id": row.clue_id,
        "decided_by": actor,
        "decided_at": now,
    }
    if decision.outcome is AcceptanceOutcome.NOT_ACCEPT:
        return ReportRejected(ground=decision.ground, reason=decision.reason, **common)
    if decision.outcome is AcceptanceOutcome.FORWARD:
        due = row.forward_due_at or now
        return ReportForwarded(
            forward_to_body=decision.forward_to_body,
            reason=decision.reason,
            forward_due_at=due,
            within_limit=now <= as_utc(due),
            **common,
        )
    return ReportAccepted(**common)
