"""The scan that publishes, once per report, a real-name feedback told too late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, update
from sqlmodel import col, select

from services.contracts.intake import FeedbackDeadlineBreached
from services.intake.store.tables import ReportRow
from services.runtime import audit
from services.runtime.db import Database, as_utc
from services.runtime.outbox import record_event

EVENT_SOURCE = "xiezuo/intake"
SCANNER = "system:feedback-scan"


@dataclass(frozen=True)
class OwedFeedback:
    """One feedback owed to a real-name reporter: the ReportRow columns that track it."""

    kind: str
    due: str
    given: str
    breach_published: str
    audit_action: str


ACCEPTANCE_FEEDBACK = OwedFeedback(
    kind="acceptance",
    due="feedback_due_at",
    given="feedback_given_at",
    breach_published="feedback_breach_published_at",
    audit_action="report.feedback_deadline_breached",
)
RESULT_FEEDBACK = OwedFeedback(
    kind="result",
    due="result_due_at",
    given="result_given_at",
    breach_published="result_breach_published_at",
    audit_action="report.result_deadline_breached",
)


async def publish_breaches(database: Database, owed: OwedFeedback, *, now: datetime) -> list[str]:
    """Publish FeedbackDeadlineBreached once for each report whose `owed` feedback is overdue."""
    due = col(getattr(ReportRow, owed.due))
    given = col(getattr(ReportRow, owed.given))
    published = col(getattr(ReportRow, owed.breach_published))
    async with database.session() as session:
        query = select(ReportRow.report_id).where(
            col(ReportRow.real_name).is_(True),
            due.is_not(None),
            due < now,
            or_(col(ReportRow.scan_after).is_(None), col(ReportRow.scan_after) <= now),
            given.is_(None),
            published.is_(None),
        )
        overdue = list((await session.exec(query)).all())
    breached: list[str] = []
    for report_id in overdue:
        async with database.transaction() as session:
            # Claim the breach with a conditional update, so two scanners publish it once.
            claimed = await session.exec(
                update(ReportRow)
                .where(col(ReportRow.report_id) == report_id, published.is_(None), given.is_(None))
                .values({owed.breach_published: now})
            )
            if claimed.rowcount != 1:
                continue
            row = await session.get(ReportRow, report_id)
            assert row is not None
            due_at: datetime = as_utc(getattr(row, owed.due))
            event = FeedbackDeadlineBreached(
                county_id=row.county_id,
                zone_id=row.zone_id,
                report_id=row.report_id,
                clue_id=row.clue_id,
                due_at=due_at,
                detected_at=now,
                rules_version=row.rules_version or "",
                kind=owed.kind,
            )
            record_event(session, event, source=EVENT_SOURCE, occurred_at=now)
            await audit.append(
                session,
                county_id=row.county_id,
                actor=SCANNER,
                action=owed.audit_action,
                record_type="report",
                record_id=report_id,
                detail={"due_at": due_at.isoformat()},
                at=now,
            )
            breached.append(report_id)
    return breached
