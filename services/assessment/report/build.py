"""Assembling a quarterly or yearly report from the projection (read-only)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.scoring import score_unit
from services.assessment.report.model import QuarterReport, ReportRow
from services.assessment.store.marks import marks_by_subject
from services.assessment.store.projection import tallies
from services.assessment.store.scorecards import Scoring

CENT = Decimal("0.01")


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
    return QuarterReport(
        county_id=county_id,
        quarter=str(quarter),
        zone_id=zone_id,
        rules_version=rules.version,
        rows=rows,
        trends=await _trends(session, scoring, county_id, quarter, zone_id),
    )


async def _trends(
    session: AsyncSession, scoring: Scoring, county_id: str, last: Quarter, zone_id: str
) -> dict[str, list[tuple[str, Decimal]]]:
    """Zone totals of the year's quarters up to `last`, oldest first."""
    trends: dict[str, list[tuple[str, Decimal]]] = {}
    for number in range(1, last.number + 1):
        earlier = Quarter(last.year, number)
        ranking = await scoring.ranking(
            session, county_id=county_id, level=Level.ZONE, quarter=earlier
        )
        for unit in ranking.units:
            if not zone_id or unit.subject_id == zone_id:
                trends.setdefault(unit.subject_id, []).append((str(earlier), unit.total))
    return dict(sorted(trends.items()))


async def build_year_report(
    session: AsyncSession, scoring: Scoring, *, county_id: str, year: int, zone_id: str = ""
) -> QuarterReport:
    """The year's view: units ranked by their mean quarterly total, counts summed over the
    four quarters, quantitative and qualitative parts averaged like the total (an idle quarter
    scores the base), and the zone trend across all four quarters."""
    quarters = [Quarter(year, number) for number in (1, 2, 3, 4)]
    rows: list[ReportRow] = []
    for level in Level:
        ranking = await scoring.year_ranking(session, county_id=county_id, level=level, year=year)
        summed: dict[str, dict[str, int]] = {}
        parts: dict[str, list[Decimal]] = {}
        for quarter in quarters:
            rules = scoring.rules_for(quarter)
            counts = await tallies(session, county_id=county_id, quarter=quarter, level=level)
            marks = await marks_by_subject(
                session, county_id=county_id, quarter=quarter, level=level
            )
            for unit in ranking.units:
                unit_counts = counts.get(unit.subject_id, {})
                total = summed.setdefault(unit.subject_id, {})
                for kpi, value in unit_counts.items():
                    total[kpi] = total.get(kpi, 0) + value
                score = score_unit(rules, level, unit_counts, marks.get(unit.subject_id, []))
                sums = parts.setdefault(unit.subject_id, [Decimal(0), Decimal(0)])
                sums[0] += score.quantitative
                sums[1] += score.qualitative
        for unit in ranking.units:
            zones = (
                {unit.subject_id}
                if level is Level.ZONE
                else ranking.zones.get(unit.subject_id, set())
            )
            if zone_id and zone_id not in zones:
                continue
            quantitative, qualitative = parts.get(unit.subject_id, [Decimal(0), Decimal(0)])
            rows.append(
                ReportRow(
                    level=level.value,
                    subject_id=unit.subject_id,
                    zones=tuple(sorted(zones)),
                    rank=unit.rank,
                    tier=unit.tier.value,
                    quantitative=(quantitative / 4).quantize(CENT, ROUND_HALF_UP),
                    qualitative=(qualitative / 4).quantize(CENT, ROUND_HALF_UP),
                    total=unit.total,
                    counts=dict(sorted(summed.get(unit.subject_id, {}).items())),
                )
            )
    versions = sorted({scoring.rules_for(quarter).version for quarter in quarters})
    return QuarterReport(
        county_id=county_id,
        quarter=str(year),
        zone_id=zone_id,
        rules_version=", ".join(versions),
        rows=rows,
        trends=await _trends(session, scoring, county_id, quarters[-1], zone_id),
    )
