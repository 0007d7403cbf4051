"""Case progress on a clue moves the status its reporters see, and tells them once."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake.domain.progress import TOLD, later, progressed
from services.intake.domain.rulebook import RuleBook
from services.intake.domain.status import ReportStatus
from services.intake.store.exchange import SYSTEM, append_message
from services.intake.store.tables import ClueLedgerRow, ReportRow
from services.intake.store.vault import Vault
from services.runtime import audit
from services.runtime.backentry import BACK_ENTRY_GRACE
from services.runtime.db import as_utc


async def apply_progress(
    session: AsyncSession,
    vault: Vault,
    *,
    county_id: str,
    clue_id: str,
    progress: ReportStatus,
    actor: str,
    now: datetime,
    rule_book: RuleBook | None = None,
    occurred_at: datetime | None = None,
    back_entered: bool = False,
) -> list[str]:
    """Move every report of the clue on; the ids of the reports whose status changed.

    With a rule book, closure also starts each real-name reporter's result-feedback limit.
    """
    clue = await session.get(ClueLedgerRow, clue_id, with_for_update=True)
    if clue is None or clue.county_id != county_id:
        # A clue intake did not register (e.g. opened by daily supervision in cases).
        return []
    clue.progress, clue.progress_at = later(clue.progress, progress).value, now
    session.add(clue)
    reports = await session.exec(
        select(ReportRow).where(ReportRow.clue_id == clue_id, ReportRow.county_id == county_id)
    )
    moved: list[str] = []
    for report in reports.all():
        current = ReportStatus(report.status)
        status = progressed(current, progress)
        closed = progress is ReportStatus.CONCLUDED and (status or current) is progress
        if closed and report.concluded_at is None:
            # The first concluding step counts (decided, then closed, keeps the decision's).
            report.concluded_at = occurred_at or now
            session.add(report)
        if rule_book is not None and closed:
            _owe_result(
                report,
                rule_book,
                closed_at=occurred_at or now,
                now=now,
                back_entered=back_entered,
            )
            session.add(report)
        if status is None:
            continue
        report.status = status.value
        session.add(report)
        await append_message(
            session,
            vault,
            report,
            author=SYSTEM,
            kind="message",
            body=TOLD[status],
            idempotency_key=f"progress:{status.value}",
            now=now,
        )
        await audit.append(
            session,
            county_id=county_id,
            actor=actor,
            action="report.progress_told",
            record_type="report",
            record_id=report.report_id,
            detail={"clue_id": clue_id, "status": status.value},
            at=now,
        )
        moved.append(report.report_id)
    return moved


def _owe_result(
    report: ReportRow,
    rule_book: RuleBook,
    *,
    closed_at: datetime,
    now: datetime,
    back_entered: bool,
) -> None:
    """A real-name reporter is owed the result within working days of closure (set once)."""
    if not report.real_name or report.result_due_at is not None:
        # Anonymous reporters are owed nothing; a redelivery or a later concluding step
        # (decided, then closed) must not move the limit.
        return
    # The version in force when the report was received, as for the acceptance limit.
    rules = rule_book.rules_at(report.received_at)
    report.result_due_at = rule_book.calendar.working_days_after(
        closed_at, rules.result_feedback_working_days
    )
    if back_entered and report.result_due_at <= now:
        # A closure entered after the fact (补录): give the office time to enter the answer.
        report.scan_after = max(as_utc(report.scan_after or now), now + BACK_ENTRY_GRACE)
