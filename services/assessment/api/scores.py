"""Scorecards, explanations and rankings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.assessment.v1 import assessment_pb2 as pb

from services.assessment.api import policy
from services.assessment.api.convert import LEVELS, ranking_entry, scorecard_message
from services.assessment.api.idempotency import required
from services.assessment.api.requests import (
    DEFAULT_EVENTS_PER_KPI,
    DEFAULT_PAGE_SIZE,
    MAX_EVENTS_PER_KPI,
    MAX_PAGE_SIZE,
    YEAR,
    Context,
    audit_read,
    rules_known,
    unit_fields,
    zones_of,
)
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.store.names import unit_name, unit_names
from services.assessment.store.projection import subject_zones, zone_known
from services.assessment.store.scorecards import Explanation, Scorecard, Scoring, ranking_counts
from services.assessment.store.timeliness import Derived
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, NotFound
from services.runtime.grpc.paging import decode_page_token, encode_page_token

T = TypeVar("T")


class ScoreQueries:
    """GetScorecard, ExplainScore, GetRanking."""

    _db: Database
    _scoring: Scoring
    _calendar: AssessmentCalendar

    async def GetScorecard(
        self, request: pb.GetScorecardRequest, context: Context
    ) -> pb.GetScorecardResponse:
        """One unit's scorecard for a quarter."""
        violations: list[FieldViolation] = []
        level, quarter = unit_fields(request, violations)

        async def read(session: AsyncSession, derived: Derived) -> Scorecard:
            return await self._scoring.scorecard(
                session,
                county_id=request.county_id,
                level=level,
                subject_id=request.subject_id,
                quarter=quarter,
                derived=derived,
            )

        card, name = await self._read_unit(request, violations, level, quarter, read)
        return pb.GetScorecardResponse(scorecard=scorecard_message(card, name=name))

    async def ExplainScore(
        self, request: pb.ExplainScoreRequest, context: Context
    ) -> pb.ExplainScoreResponse:
        """A scorecard whose components list their contributing events."""
        violations: list[FieldViolation] = []
        level, quarter = unit_fields(request, violations)
        if not 0 <= request.events_per_kpi <= MAX_EVENTS_PER_KPI:
            violations.append(FieldViolation("events_per_kpi", f"must be 0..{MAX_EVENTS_PER_KPI}"))

        async def read(session: AsyncSession, derived: Derived) -> Explanation:
            return await self._scoring.explain(
                session,
                county_id=request.county_id,
                level=level,
                subject_id=request.subject_id,
                quarter=quarter,
                events_per_kpi=request.events_per_kpi or DEFAULT_EVENTS_PER_KPI,
                derived=derived,
            )

        explanation, name = await self._read_unit(request, violations, level, quarter, read)
        return pb.ExplainScoreResponse(
            scorecard=scorecard_message(
                explanation.scorecard, explanation.events, name, explanation.cases
            )
        )

    async def _read_unit(
        self,
        request: Any,
        violations: list[FieldViolation],
        level: Level,
        quarter: Quarter,
        read: Callable[[AsyncSession, Derived], Awaitable[T]],
    ) -> tuple[T, str]:
        """Authorise, read and audit one unit's scorecard in one transaction; with its name."""
        rules_known(self._scoring, quarter, violations)
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        async with self._db.transaction() as session:
            # Judging the clocks is the costly read: once for the zones and the counts.
            derived = await self._scoring.derived(
                session, county_id=request.county_id, quarter=quarter, level=level
            )
            zones = await subject_zones(
                session, county_id=request.county_id, quarter=quarter, level=level, derived=derived
            )
            policy.authorize_scorecard(
                principal,
                county_id=request.county_id,
                level=level,
                subject_id=request.subject_id,
                zones=zones.get(request.subject_id, set()),
            )
            # A zone the registry never named and nothing was counted for has no card: a
            # made-up base score would pass for a real one.
            if (
                level is Level.ZONE
                and request.subject_id not in zones
                and not await zone_known(
                    session, county_id=request.county_id, zone_id=request.subject_id
                )
            ):
                raise NotFound("zone", request.subject_id)
            found = await read(session, derived)
            name = await unit_name(
                session, county_id=request.county_id, level=level, subject_id=request.subject_id
            )
            await audit_read(session, principal.subject, request.county_id, level, request)
        return found, name

    async def GetRanking(
        self, request: pb.GetRankingRequest, context: Context
    ) -> pb.GetRankingResponse:
        """A page of the ranking, limited to the entries the caller may see."""
        violations = required(request, "county_id")
        level = LEVELS.get(request.level, Level.ZONE)
        if request.level not in LEVELS:
            violations.append(FieldViolation("level", "must be zone, township or person"))
        year: int | None = None
        quarter = Quarter(1, 1)
        if YEAR.match(request.period):
            year = int(request.period)
        else:
            try:
                quarter = Quarter.parse(request.period)
            except ValueError:
                violations.append(FieldViolation("period", "must be a quarter (2026Q3) or a year"))
        # A year's ranking averages its four quarters: each needs rules in force.
        rules_known(
            self._scoring, quarter if year is None else Quarter(year, 1), violations, "period"
        )
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be 0..{MAX_PAGE_SIZE}"))
        query = [request.county_id, level.value, request.period, request.zone_id]
        offset = 0
        if request.page_token:
            try:
                offset = int(decode_page_token(request.page_token, {"query": query}))
                if offset < 0:
                    raise ValueError("is not a token this service issued")
            except ValueError as exc:
                violations.append(FieldViolation("page_token", str(exc)))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        policy.authorize_ranking(principal, county_id=request.county_id)
        async with self._db.transaction() as session:
            if year is None:
                ranking = await self._scoring.ranking(
                    session, county_id=request.county_id, level=level, quarter=quarter
                )
            else:
                ranking = await self._scoring.year_ranking(
                    session, county_id=request.county_id, level=level, year=year
                )
            names = await unit_names(session, county_id=request.county_id)
            await audit.append(
                session,
                county_id=request.county_id,
                actor=principal.subject,
                action="ranking.read",
                record_type="ranking",
                record_id=f"{level.value}:{request.period}",
                detail={"zone_id": request.zone_id},
            )
        visible = [
            unit
            for unit in ranking.units
            if (
                not request.zone_id
                or request.zone_id in zones_of(ranking.zones, level, unit.subject_id)
            )
            and policy.may_see_unit(
                principal,
                level=level,
                subject_id=unit.subject_id,
                zones=ranking.zones.get(unit.subject_id, set()),
            )
        ]
        limit = request.page_size or DEFAULT_PAGE_SIZE
        page = visible[offset : offset + limit]
        next_token = (
            encode_page_token(str(offset + limit), {"query": query})
            if offset + limit < len(visible)
            else ""
        )
        counts = ranking_counts(ranking)
        return pb.GetRankingResponse(
            entries=[
                ranking_entry(
                    unit,
                    sorted(zones_of(ranking.zones, level, unit.subject_id)),
                    names.get((level.value, unit.subject_id), ""),
                    counts.get(unit.subject_id, {}),
                )
                for unit in page
            ],
            ranked_units=len(ranking.units),
            rules_version=ranking.rules.version,
            next_page_token=next_token,
        )
