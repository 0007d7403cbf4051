"""Telling a reporter the result after closure, and the scan for real-name results told late."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from services.contracts.intake import ResultFeedbackGiven
from services.intake.domain.status import ReportStatus
from services.intake.store.exchange import SYSTEM, append_message
from services.intake.store.feedback_scan import RESULT_FEEDBACK, publish_breaches
from services.intake.store.tables import ReporterMessageRow, ReportRow
from services.intake.store.vault import Vault
from services.runtime import audit
from services.runtime.db import Database, as_utc
from services.runtime.outbox import record_event

EVENT_SOURCE = "xiezuo/intake"
# ReporterMessageRow.idempotency_key holds this many characters.
_MESSAGE_KEY_LENGTH = 128
_TOLD = "The result of the handling of your report: {note}"


class NotConcluded(Exception):
    """The report's handling has not concluded: there is no result to tell yet."""


class ResultAlreadyTold(Exception):
    """The result was told before, under another idempotency key."""


@dataclass(frozen=True)
class ResultTold:
    """When the reporter was told the result, and whether that was within the limit."""

    given_at: datetime
    within_limit: bool


def _message_key(idempotency_key: str, effective_at: datetime | None) -> str:
    plain = f"result:{idempotency_key}"
    if effective_at is None and len(plain) <= _MESSAGE_KEY_LENGTH:
        return plain
    # The paper moment is part of the retry's fingerprint; hashed, the key always fits.
    moment = effective_at.isoformat() if effective_at is not None else ""
    digest = hashlib.sha256(f"{idempotency_key}|{moment}".encode()).hexdigest()
    return f"result@{digest}"


class ResultDesk:
    """Records the result told to a reporter and publishes late results once."""

    def __init__(self, database: Database, vault: Vault) -> None:
        self._db = database
        self._vault = vault

    async def record(
        self,
        report_id: str,
        *,
        note: str,
        idempotency_key: str,
        actor: str,
        now: datetime,
        effective_at: datetime | None = None,
    ) -> ResultTold:
        """Tell the result once; the same key again answers the first recording.

        A back-entered result (`effective_at`) is dated on paper everywhere but the audit log.
        """
        given_at = effective_at or now
        message_key = _message_key(idempotency_key, effective_at)
        async with self._db.transaction() as session:
            row = await session.get(ReportRow, report_id, with_for_update=True)
            if row is None:
                raise LookupError(report_id)
            if row.result_given_at is not None:
                replayed = await session.exec(
                    select(ReporterMessageRow.message_id).where(
                        ReporterMessageRow.report_id == report_id,
                        ReporterMessageRow.author == SYSTEM,
                        ReporterMessageRow.idempotency_key == message_key,
                    )
                )
                if replayed.first() is None:
                    raise ResultAlreadyTold(
                        f"the result of report {report_id} was already told"
                        " (under another idempotency_key or effective_at)"
                    )
                return ResultTold(as_utc(row.result_given_at), _within(row, row.result_given_at))
            if ReportStatus(row.status) is not ReportStatus.CONCLUDED:
                raise NotConcluded(f"report {report_id} is {row.status}, not concluded")
            row.result_given_at = given_at
            session.add(row)
            await append_message(
                session,
                self._vault,
                row,
                author=SYSTEM,
                kind="message",
                body=_TOLD.format(note=note),
                idempotency_key=message_key,
                now=given_at,
            )
            within = _within(row, given_at)
            event = ResultFeedbackGiven(
                county_id=row.county_id,
                zone_id=row.zone_id,
                report_id=row.report_id,
                clue_id=row.clue_id,
                given_by=actor,
                given_at=given_at,
                due_at=as_utc(row.result_due_at) if row.result_due_at else None,
                within_limit=within,
                rules_version=row.rules_version or "",
            )
            record_event(session, event, source=EVENT_SOURCE, occurred_at=given_at)
            detail: dict[str, object] = {"clue_id": row.clue_id, "within_limit": within}
            if effective_at is not None:
                detail |= {"back_entered": True, "effective_at": effective_at.isoformat()}
            await audit.append(
                session,
                county_id=row.county_id,
                actor=actor,
                action="report.result_told",
                record_type="report",
                record_id=report_id,
                # The note may describe the matter: it stays sealed in the channel only.
                detail=detail,
                at=now,
            )
        return ResultTold(given_at, within)

    async def scan_result_deadlines(self, *, now: datetime) -> list[str]:
        """Publish FeedbackDeadlineBreached (kind "result") once per result told too late."""
        return await publish_breaches(self._db, RESULT_FEEDBACK, now=now)


def _within(row: ReportRow, given_at: datetime) -> bool:
    """Told in time (always, when nothing was owed)."""
    return row.result_due_at is None or as_utc(given_at) <= as_utc(row.result_due_at)
