"""Assembling a quarterly report from the projection (read-only)."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.scoring import score_unit
from services.assessment.report.model import QuarterReport, ReportRow
from services.assessment.store.marks import marks_by_subject
from services.assessment.store.projection import tallies
from services.assessment.store.scorecards import Scoring


async def build_report(
    session: AsyncSession, scoring: Scoring, *, county_id: str, quarter: Quarter, zone_id: str = ""
) -> QuarterReport:
    """Every level's ranking with scores and counts; with `zone_id`, only that zone's units."""
    rows: list[ReportRow] = []
    rules = scoring.rules_for(quarter)
    for level in Level:
        ranking = await scoring.ranking(session, county_id=county_id, level=level, quarter=quarter)
        counts = await tallies(session, county_id=county_id, quarter=quarter, level=level)
        marks = await marks_by_subject(session, county_id=county_id, quarter=quarter, level=level)
        for unit in ranking.units:
            zones = (
                {unit.subject_id}
                if level is Level.ZONE
                else ranking.zones.get(unit.subject_id, set())
            )
            if zone_id and zone_id not in zones:
                continue
            unit_counts = counts.get(unit.subject_id, {})
            score = score_unit(rules, level, unit_counts, marks.get(unit.subject_id, []))
            rows.append(
                ReportRow(
                    level=level.value,
                    subject_id=unit.subject_id,
                    zones=tuple(sorted(zones)),
                    rank=unit.rank,
                    tier=unit.tier.value,
                    quantitative=score.quantitative,
                    qualitative=score.qualitative,
                    total=score.total,
                    counts=unit_counts,
                )
            )
    trends: dict[str, list[tuple[str, Decimal]]] = {}
    for number in range(1, quarter.number + 1):
        earlier = Quarter(quarter.year, number)
        ranking = await scoring.ranking(
            session, county_id=county_id, level=Level.ZONE, quarter=earlier
        )
        for unit in ranking.units:
            if not zone_id or unit.subject_id == zone_id:
                trends.setdefault(unit.subject_id, []).append((str(earlier), unit.total))
    return QuarterReport(
        county_id=county_id,
        quarter=str(quarter),
        zone_id=zone_id,
        rules_version=rules.version,
        rows=rows,
        trends=dict(sorted(trends.items())),
    )
