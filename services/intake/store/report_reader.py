"""Reads a report row by id (for policy checks before any audited action)."""

from __future__ import annotations

from datetime import datetime

from services.intake.store.tables import ReportRow
from services.runtime import audit
from services.runtime.db import Database


class ReportReader:
    """Report rows by id."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, report_id: str) -> ReportRow | None:
        """The report, or None."""
        async with self._db.session() as session:
            return await session.get(ReportRow, report_id)

    async def record_read(
        self, report: ReportRow, *, actor: str, action: str, now: datetime
    ) -> None:
        """Audit a read of the report."""
        async with self._db.transaction() as session:
            await audit.append(
                session,
                county_id=report.county_id,
                actor=actor,
                action=action,
                record_type="report",
                record_id=report.report_id,
                detail={},
                at=now,
            )
