"""Qualitative marks and work plans."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.assessment.v1 import assessment_pb2 as pb

from services.assessment.api import policy
from services.assessment.api.idempotency import required, run_once
from services.assessment.api.requests import MAX_REASON, Context, unit_fields
from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.plan import Target, WorkPlan, plan_problems, progress, theme_of
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.store.marks import record_mark
from services.assessment.store.plans import load_plan, save_plan
from services.assessment.store.projection import tallies
from services.assessment.store.scorecards import Scoring
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import bounded_text
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, NotFound

MAX_STORED_ID = 64


class PlanCommands:
    """RecordQualitativeScore, DefinePlan, GetPlanProgress."""

    _db: Database
    _scoring: Scoring
    _calendar: AssessmentCalendar

    async def RecordQualitativeScore(
        self, request: pb.RecordQualitativeScoreRequest, context: Context
    ) -> pb.RecordQualitativeScoreResponse:
        """Store an assessor's mark (their latest mark for the unit and quarter counts)."""
        violations: list[FieldViolation] = []
        level, quarter = unit_fields(request, violations)
        violations += required(request, "idempotency_key")
        # The unit's ids are stored in 64-character columns (PostgreSQL refuses longer ones).
        bounded_text(request.county_id, "county_id", violations, max_length=MAX_STORED_ID)
        bounded_text(request.subject_id, "subject_id", violations, max_length=MAX_STORED_ID)
        if not request.reason.strip():
            violations.append(FieldViolation("reason", "is required"))
        elif len(request.reason) > MAX_REASON:
            violations.append(FieldViolation("reason", f"must be at most {MAX_REASON} characters"))
        rules = None
        if not violations:
            try:
                rules = self._scoring.rules_for(quarter)
            except LookupError as exc:
                violations.append(FieldViolation("quarter", str(exc)))
        points = Decimal(0)
        if rules is not None:
            if not math.isfinite(request.points) or not (
                0 <= request.points <= rules.qualitative_points
            ):
                violations.append(
                    FieldViolation("points", f"must be 0..{rules.qualitative_points}")
                )
            else:
                points = Decimal(str(round(request.points, 2)))
        if violations or rules is None:
            raise InvalidArgument(violations)
        principal = current_principal()
        policy.authorize_mark(principal, county_id=request.county_id)

        async def record(session: AsyncSession) -> dict[str, Any]:
            await record_mark(
                session,
                county_id=request.county_id,
                quarter=quarter,
                level=level,
                subject_id=request.subject_id,
                assessor=principal.subject,
                points=points,
                reason=request.reason,
                recorded_at=datetime.now(UTC),
            )
            await audit.append(
                session,
                county_id=request.county_id,
                actor=principal.subject,
                action="qualitative_mark.recorded",
                record_type=f"scorecard.{level.value}",
                record_id=f"{request.subject_id}:{quarter}",
                detail={"points": str(points)},
            )
            return {
                "assessor": principal.subject,
                "points": float(points),
                "rules_version": rules.version,
            }

        result = await run_once(
            self._db,
            key=request.idempotency_key,
            actor=principal.subject,
            command="RecordQualitativeScore",
            request=[
                request.county_id,
                level.value,
                request.subject_id,
                str(quarter),
                str(points),
                request.reason,
            ],
            work=record,
        )
        return pb.RecordQualitativeScoreResponse(**result)

    async def DefinePlan(
        self, request: pb.DefinePlanRequest, context: Context
    ) -> pb.DefinePlanResponse:
        """Replace the county's work plan for the year."""
        violations = required(request, "idempotency_key", "county_id")
        themes: dict[int, str] = {}
        for index, theme in enumerate(request.themes):
            if theme.quarter in themes:
                violations.append(FieldViolation(f"themes[{index}]", "repeats a quarter"))
            themes[theme.quarter] = theme.theme.strip()
        plan = WorkPlan(
            county_id=request.county_id,
            year=request.year,
            themes=themes,
            targets=tuple(
                Target(quarter=t.quarter, zone_id=t.zone_id, kpi=t.kpi, target=t.target)
                for t in request.targets
            ),
        )
        violations += [
            FieldViolation(field, problem)
            for field, problem in plan_problems(plan, {kpi.value for kpi in Kpi})
        ]
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        policy.authorize_plan(principal, county_id=request.county_id)

        async def define(session: AsyncSession) -> dict[str, Any]:
            revision = await save_plan(
                session, plan, defined_by=principal.subject, defined_at=datetime.now(UTC)
            )
            await audit.append(
                session,
                county_id=request.county_id,
                actor=principal.subject,
                action="work_plan.defined",
                record_type="work_plan",
                record_id=f"{request.county_id}:{request.year}",
                detail={"revision": revision, "targets": len(plan.targets)},
            )
            return {"revision": revision}

        result = await run_once(
            self._db,
            key=request.idempotency_key,
            actor=principal.subject,
            command="DefinePlan",
            request=[
                request.county_id,
                request.year,
                sorted(themes.items()),
                [(t.quarter, t.zone_id, t.kpi, t.target) for t in plan.targets],
            ],
            work=define,
        )
        return pb.DefinePlanResponse(**result)

    async def GetPlanProgress(
        self, request: pb.GetPlanProgressRequest, context: Context
    ) -> pb.GetPlanProgressResponse:
        """Zones' progress against the plan's targets for one quarter."""
        violations = required(request, "county_id")
        if request.quarter not in (1, 2, 3, 4):
            violations.append(FieldViolation("quarter", "must be 1..4"))
        if not 2000 <= request.year <= 2100:
            violations.append(FieldViolation("year", "must be between 2000 and 2100"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones = policy.progress_zones(
            principal, county_id=request.county_id, zone_id=request.zone_id
        )
        async with self._db.transaction() as session:
            plan = await load_plan(session, county_id=request.county_id, year=request.year)
            if plan is None:
                raise NotFound("work plan", f"{request.county_id}/{request.year}")
            counts = await tallies(
                session,
                county_id=request.county_id,
                quarter=Quarter(request.year, request.quarter),
                level=Level.ZONE,
            )
        rows = [
            progress(target, counts.get(target.zone_id, {}).get(target.kpi, 0))
            for target in plan.targets
            if target.quarter == request.quarter and (zones is None or target.zone_id in zones)
        ]
        return pb.GetPlanProgressResponse(
            theme=theme_of(plan, request.quarter),
            progress=[
                pb.TargetProgress(
                    target=pb.PlanTarget(
                        quarter=row.target.quarter,
                        zone_id=row.target.zone_id,
                        kpi=row.target.kpi,
                        target=row.target.target,
                    ),
                    actual=row.actual,
                    percent=float(row.percent),
                    met=row.met,
                )
                for row in rows
            ],
        )
