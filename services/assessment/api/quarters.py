"""Closing quarters and exporting reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.assessment.v1 import assessment_pb2 as pb

from services.assessment.api import policy
from services.assessment.api.idempotency import required, run_once
from services.assessment.api.requests import Context, rules_known
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.report.build import build_report, build_year_report
from services.assessment.report.render import render_csv, render_html
from services.assessment.store.closes import AlreadyClosed, close_quarter
from services.assessment.store.scorecards import Scoring
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import FailedPrecondition, FieldViolation, InvalidArgument

# Plausible report years (input validation, not a rule).
MIN_YEAR, MAX_YEAR = 2000, 2100


class QuarterCommands:
    """CloseQuarter, ExportReport."""

    _db: Database
    _scoring: Scoring
    _calendar: AssessmentCalendar

    async def CloseQuarter(
        self, request: pb.CloseQuarterRequest, context: Context
    ) -> pb.CloseQuarterResponse:
        """Publish the official scorecards of an ended quarter, once."""
        violations = required(request, "idempotency_key", "county_id")
        quarter = Quarter(1, 1)
        try:
            quarter = Quarter.parse(request.quarter)
        except ValueError as exc:
            violations.append(FieldViolation("quarter", str(exc)))
        rules_known(self._scoring, quarter, violations)
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        policy.authorize_close(principal, county_id=request.county_id)
        now = datetime.now(UTC)

        async def close(session: AsyncSession) -> dict[str, Any]:
            # The only use of the wall clock: a quarter cannot be closed before it has ended.
            if not self._calendar.has_ended(quarter, now):
                raise FailedPrecondition(f"{quarter} has not ended yet")
            try:
                closed = await close_quarter(
                    session,
                    self._scoring,
                    county_id=request.county_id,
                    quarter=quarter,
                    closed_by=principal.subject,
                    closed_at=now,
                )
            except AlreadyClosed as exc:
                raise FailedPrecondition(str(exc)) from exc
            result: dict[str, Any] = {
                "published": closed.published,
                "rules_version": closed.rules_version,
            }
            await audit.append(
                session,
                county_id=request.county_id,
                actor=principal.subject,
                action="quarter.closed",
                record_type="quarter",
                record_id=str(quarter),
                detail=result,
            )
            return result

        result = await run_once(
            self._db,
            key=request.idempotency_key,
            actor=principal.subject,
            command="CloseQuarter",
            request=[request.county_id, str(quarter)],
            work=close,
        )
        return pb.CloseQuarterResponse(**result)

    async def ExportReport(
        self, request: pb.ExportReportRequest, context: Context
    ) -> pb.ExportReportResponse:
        """The quarter's (or year's) report as HTML and CSV."""
        violations = required(request, "county_id")
        quarter = Quarter(1, 1)
        if request.year and request.quarter:
            violations.append(FieldViolation("year", "give a quarter or a year, not both"))
        elif request.year:
            if not MIN_YEAR <= request.year <= MAX_YEAR:
                violations.append(FieldViolation("year", f"must be {MIN_YEAR}..{MAX_YEAR}"))
        else:
            try:
                quarter = Quarter.parse(request.quarter)
            except ValueError as exc:
                violations.append(FieldViolation("quarter", str(exc)))
        if request.year:
            rules_known(self._scoring, Quarter(request.year, 1), violations, "year")
        else:
            rules_known(self._scoring, quarter, violations)
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        policy.authorize_report(principal, county_id=request.county_id, zone_id=request.zone_id)
        period = str(request.year) if request.year else str(quarter)
        async with self._db.transaction() as session:
            if request.year:
                report = await build_year_report(
                    session,
                    self._scoring,
                    county_id=request.county_id,
                    year=request.year,
                    zone_id=request.zone_id,
                )
            else:
                report = await build_report(
                    session,
                    self._scoring,
                    county_id=request.county_id,
                    quarter=quarter,
                    zone_id=request.zone_id,
                )
            await audit.append(
                session,
                county_id=request.county_id,
                actor=principal.subject,
                action="report.exported",
                record_type="assessment_report",
                record_id=f"{period}:{request.zone_id or '*'}",
            )
        return pb.ExportReportResponse(html=render_html(report), csv=render_csv(report))
