"""Validation and helpers shared by the assessment servicer's parts."""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import grpc

from services.assessment.api.convert import LEVELS
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.store.scorecards import Scoring
from services.runtime import audit
from services.runtime.grpc.errors import FieldViolation

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_EVENTS_PER_KPI = 100
MAX_EVENTS_PER_KPI = 1000
MAX_REASON = 2000
YEAR = re.compile(r"^\d{4}$")

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def unit_fields(
    request: Any, violations: list[FieldViolation], *, subject: bool = True
) -> tuple[Level, Quarter]:
    """Validate county, level, subject and quarter fields shared by most requests."""
    if not request.county_id:
        violations.append(FieldViolation("county_id", "is required"))
    level = LEVELS.get(request.level)
    if level is None:
        violations.append(FieldViolation("level", "must be zone, township or person"))
    if subject and not request.subject_id:
        violations.append(FieldViolation("subject_id", "is required"))
    quarter = Quarter(1, 1)
    try:
        quarter = Quarter.parse(request.quarter)
    except ValueError as exc:
        violations.append(FieldViolation("quarter", str(exc)))
    return level or Level.ZONE, quarter


def rules_known(
    scoring: Scoring, quarter: Quarter, violations: list[FieldViolation], field: str = "quarter"
) -> None:
    """Add a violation when no scoring rules are in force for quarter (e.g. before the first)."""
    if any(v.field == field for v in violations):
        return  # already refused for its form
    try:
        scoring.rules_for(quarter)
    except LookupError as missing:
        violations.append(FieldViolation(field, str(missing)))


def zones_of(zones: dict[str, set[str]], level: Level, subject_id: str) -> set[str]:
    return {subject_id} if level is Level.ZONE else zones.get(subject_id, set())


async def audit_read(session: Any, actor: str, county_id: str, level: Level, request: Any) -> None:
    # A person's scorecard is a record about that person: every read is on the audit chain.
    await audit.append(
        session,
        county_id=county_id,
        actor=actor,
        action="scorecard.read",
        record_type=f"scorecard.{level.value}",
        record_id=f"{request.subject_id}:{request.quarter}",
    )
