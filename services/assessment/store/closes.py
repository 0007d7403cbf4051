"""Closing a quarter: every unit's official scorecard goes out as ScorecardPublished."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.scoring import score_unit
from services.assessment.store.scorecards import Scoring
from services.assessment.store.tables import QuarterClose
from services.contracts.assessment import ScorecardPublished
from services.runtime.outbox import record_event

SOURCE = "xiezuo/assessment"


class AlreadyClosed(Exception):
    """The quarter was closed before."""


async def close_quarter(
    session: AsyncSession,
    scoring: Scoring,
    *,
    county_id: str,
    quarter: Quarter,
    closed_by: str,
    closed_at: datetime,
) -> QuarterClose:
    """Publish (through the outbox, in the caller's transaction) every unit's scorecard."""
    if await session.get(QuarterClose, (county_id, str(quarter))) is not None:
        raise AlreadyClosed(f"{county_id} {quarter} is already closed")
    rules = scoring.rules_for(quarter)
    published = 0
    for level in Level:
        ranking = await scoring.ranking(session, county_id=county_id, level=level, quarter=quarter)
        counts, marks = ranking.counts, ranking.marks
        for unit in ranking.units:
            zones = sorted(ranking.zones.get(unit.subject_id, set()))
            zone_id = unit.subject_id if level is Level.ZONE else (zones[0] if zones else "")
            score = score_unit(
                rules, level, counts.get(unit.subject_id, {}), marks.get(unit.subject_id, [])
            )
            event = ScorecardPublished(
                county_id=county_id,
                zone_id=zone_id,
                level=level.value,
                unit_id=unit.subject_id,
                quarter=str(quarter),
                rules_version=rules.version,
                quantitative=score.quantitative,
                qualitative=score.qualitative,
                total=score.total,
                rank=unit.rank,
                tier=unit.tier.value,
                ranked_units=len(ranking.units),
                closed_at=closed_at,
            )
            record_event(session, event, source=SOURCE, occurred_at=closed_at)
            published += 1
    close = QuarterClose(
        county_id=county_id,
        quarter=str(quarter),
        rules_version=rules.version,
        published=published,
        closed_by=closed_by,
        closed_at=closed_at,
    )
    session.add(close)
    return close
