"""Assembling a quarterly or yearly report from the projection (read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from decimal import ROUND_HALF_UP, Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.collaboration import CollaborationSummary
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.scoring import score_unit
from services.assessment.report.model import QuarterReport, ReportRow
from services.assessment.store.collaboration import collaboration_summary
from services.assessment.store.names import unit_names
from services.assessment.store.scorecards import Ranking, Scoring

CENT = Decimal("0.01")


async def build_report(
    session: AsyncSession, scoring: Scoring, *, county_id: str, quarter: Quarter, zone_id: str = ""
) -> QuarterReport:
    """Every level's ranking with scores and counts; with `zone_id`, only that zone's units."""
    rows: list[ReportRow] = []
    rules = scoring.rules_for(quarter)
    names = await unit_names(session, county_id=county_id)
    # The zone trend needs the year's zone rankings up to this quarter; this one is built below.
    zone_rankings = [
        await scoring.ranking(
            session, county_id=county_id, level=Level.ZONE, quarter=Quarter(quarter.year, number)
        )
        for number in range(1, quarter.number)
    ]
    for level in Level:
        ranking = await scoring.ranking(session, county_id=county_id, level=level, quarter=quarter)
        if level is Level.ZONE:
            zone_rankings.append(ranking)
        counts, marks = ranking.counts, ranking.marks
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
                    name=names.get((level.value, unit.subject_id), ""),
                )
            )
    help_given = await collaboration_summary(session, county_id=county_id, quarter=quarter)
    return QuarterReport(
        county_id=county_id,
        quarter=str(quarter),
        zone_id=zone_id,
        rules_version=rules.version,
        rows=rows,
        trends=_trends(zone_rankings, quarter.year, zone_id),
        names=names,
        # A zone's report shows that zone's line only (help given is the county's).
        help={
            unit: summary
            for unit, summary in sorted(help_given.items())
            if not zone_id or unit == zone_id
        },
    )


def _trends(
    zone_rankings: Sequence[Ranking], year: int, zone_id: str
) -> dict[str, list[tuple[str, Decimal]]]:
    """Zone totals of the year's quarters (one zone ranking each, from Q1), oldest first."""
    trends: dict[str, list[tuple[str, Decimal]]] = {}
    for number, ranking in enumerate(zone_rankings, start=1):
        for unit in ranking.units:
            if not zone_id or unit.subject_id == zone_id:
                trends.setdefault(unit.subject_id, []).append(
                    (str(Quarter(year, number)), unit.total)
                )
    return dict(sorted(trends.items()))


async def build_year_report(
    session: AsyncSession, scoring: Scoring, *, county_id: str, year: int, zone_id: str = ""
) -> QuarterReport:
    """The year's view: units ranked by their mean quarterly total, counts summed over the
    four quarters, quantitative and qualitative parts averaged like the total (an idle quarter
    scores the base), and the zone trend across all four quarters."""
    quarters = [Quarter(year, number) for number in (1, 2, 3, 4)]
    rows: list[ReportRow] = []
    names = await unit_names(session, county_id=county_id)
    zone_rankings: Sequence[Ranking] = ()
    for level in Level:
        ranking = await scoring.year_ranking(session, county_id=county_id, level=level, year=year)
        if level is Level.ZONE:
            zone_rankings = ranking.quarters
        summed: dict[str, dict[str, int]] = {}
        parts: dict[str, list[Decimal]] = {}
        for quarterly in ranking.quarters:
            rules, counts, marks = quarterly.rules, quarterly.counts, quarterly.marks
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
                    name=names.get((level.value, unit.subject_id), ""),
                )
            )
    versions = sorted({scoring.rules_for(quarter).version for quarter in quarters})
    help_given = await _year_help(session, county_id, quarters)
    return QuarterReport(
        county_id=county_id,
        quarter=str(year),
        zone_id=zone_id,
        rules_version=", ".join(versions),
        rows=rows,
        trends=_trends(zone_rankings, year, zone_id),
        names=names,
        help={
            unit: summary for unit, summary in help_given.items() if not zone_id or unit == zone_id
        },
    )


async def _year_help(
    session: AsyncSession, county_id: str, quarters: Sequence[Quarter]
) -> dict[str, CollaborationSummary]:
    """Help between counties over the year: the quarters' counts added, every answer's days."""
    year: dict[str, CollaborationSummary] = {}
    counted = [f.name for f in fields(CollaborationSummary) if f.name != "approval_to_answer_days"]
    for quarter in quarters:
        found = await collaboration_summary(session, county_id=county_id, quarter=quarter)
        for unit, summary in found.items():
            total = year.setdefault(unit, CollaborationSummary())
            for name in counted:
                setattr(total, name, getattr(total, name) + getattr(summary, name))
            total.approval_to_answer_days = tuple(
                sorted(total.approval_to_answer_days + summary.approval_to_answer_days)
            )
    return dict(sorted(year.items()))
