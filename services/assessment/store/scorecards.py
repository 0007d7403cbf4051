"""Scorecards, rankings and explanations computed from the projection and the scoring rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.four_forms import FourFormsRules, load_four_forms
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.ranking import RankedUnit, rank_units
from services.assessment.domain.scoring import CENT, Score, score_unit
from services.assessment.domain.scoring_rules import ScoringRules, rules_in_force
from services.assessment.store.derived import derived_counts
from services.assessment.store.event_cases import cases_of_events
from services.assessment.store.marks import marks_by_subject
from services.assessment.store.projection import contributing_events, subject_zones, tallies
from services.assessment.store.timeliness import Derived


@dataclass(frozen=True)
class Scorecard:
    """A unit's counts and score for a quarter."""

    county_id: str
    level: Level
    subject_id: str
    quarter: Quarter
    counts: dict[str, int]
    score: Score


@dataclass(frozen=True)
class Ranking:
    """Every unit of a level ranked, with the zones each was counted in."""

    rules: ScoringRules
    units: list[RankedUnit]
    zones: dict[str, set[str]]
    # What a quarter's ranking was computed from, kept so callers need not read it again.
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    marks: dict[str, list[Decimal]] = field(default_factory=dict)
    # A year's ranking: the rankings of its four quarters, oldest first.
    quarters: tuple[Ranking, ...] = ()


def ranking_counts(ranking: Ranking) -> dict[str, dict[str, int]]:
    """Each unit's counts: the quarter's, or for a year the sum of its quarters'."""
    if not ranking.quarters:
        return ranking.counts
    summed: dict[str, dict[str, int]] = {}
    for quarterly in ranking.quarters:
        for subject, counts in quarterly.counts.items():
            total = summed.setdefault(subject, {})
            for kpi, value in counts.items():
                total[kpi] = total.get(kpi, 0) + value
    return summed


@dataclass(frozen=True)
class Explanation:
    """A scorecard, the ids of the events behind each KPI and the cases of those events."""

    scorecard: Scorecard
    events: dict[str, list[str]]
    # event id → the clue/case it concerns (events about no case are absent).
    cases: dict[str, str] = field(default_factory=dict)


class Scoring:
    """Applies the rules in force to projection rows (no writes)."""

    def __init__(
        self, rule_versions: Sequence[ScoringRules], forms: FourFormsRules | None = None
    ) -> None:
        self._versions = list(rule_versions)
        self.forms = forms or load_four_forms()

    async def derived(
        self,
        session: AsyncSession,
        *,
        county_id: str,
        quarter: Quarter,
        level: Level,
        subject_id: str | None = None,
    ) -> Derived:
        """The counts judged when read (limits met, four forms, staff work) for one scope."""
        return await derived_counts(
            session,
            county_id=county_id,
            quarter=quarter,
            level=level,
            subject_id=subject_id,
            forms=self.forms,
        )

    def rules_for(self, quarter: Quarter) -> ScoringRules:
        """The scheme that scores `quarter`."""
        return rules_in_force(self._versions, quarter)

    async def scorecard(
        self,
        session: AsyncSession,
        *,
        county_id: str,
        level: Level,
        subject_id: str,
        quarter: Quarter,
        derived: Derived | None = None,
    ) -> Scorecard:
        """One unit's scorecard (all zero counts when nothing was counted yet)."""
        if derived is None:
            derived = await self.derived(
                session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
            )
        counts = (
            await tallies(
                session,
                county_id=county_id,
                quarter=quarter,
                level=level,
                subject_id=subject_id,
                derived=derived,
            )
        ).get(subject_id, {})
        marks = await marks_by_subject(session, county_id=county_id, quarter=quarter, level=level)
        score = score_unit(self.rules_for(quarter), level, counts, marks.get(subject_id, []))
        return Scorecard(county_id, level, subject_id, quarter, counts, score)

    async def ranking(
        self, session: AsyncSession, *, county_id: str, level: Level, quarter: Quarter
    ) -> Ranking:
        """All units of a level in the county for the quarter, ranked with tiers."""
        rules = self.rules_for(quarter)
        # Judging the clocks is the costly read: once for both the counts and the zones.
        derived = await self.derived(session, county_id=county_id, quarter=quarter, level=level)
        counts = await tallies(
            session, county_id=county_id, quarter=quarter, level=level, derived=derived
        )
        marks = await marks_by_subject(session, county_id=county_id, quarter=quarter, level=level)
        zones = await subject_zones(
            session, county_id=county_id, quarter=quarter, level=level, derived=derived
        )
        subjects = set(counts) | set(zones) | set(marks)
        totals = {
            subject: score_unit(rules, level, counts.get(subject, {}), marks.get(subject, [])).total
            for subject in subjects
        }
        return Ranking(rules, rank_units(totals, rules.tiers), zones, counts, marks)

    async def year_ranking(
        self, session: AsyncSession, *, county_id: str, level: Level, year: int
    ) -> Ranking:
        """Units ranked by the mean of their four quarterly totals of `year`."""
        quarters = [
            await self.ranking(
                session, county_id=county_id, level=level, quarter=Quarter(year, number)
            )
            for number in (1, 2, 3, 4)
        ]
        zones: dict[str, set[str]] = {}
        for ranking in quarters:
            for subject, found in ranking.zones.items():
                zones.setdefault(subject, set()).update(found)
        subjects = {unit.subject_id for ranking in quarters for unit in ranking.units}
        sums = dict.fromkeys(subjects, Decimal(0))
        for ranking in quarters:
            # A unit with nothing counted in a quarter scores that quarter's base.
            idle = score_unit(ranking.rules, level, {}).total
            totals = {unit.subject_id: unit.total for unit in ranking.units}
            for subject in subjects:
                sums[subject] += totals.get(subject, idle)
        rules = quarters[-1].rules
        means = {
            subject: (total / 4).quantize(CENT, ROUND_HALF_UP) for subject, total in sums.items()
        }
        return Ranking(rules, rank_units(means, rules.tiers), zones, quarters=tuple(quarters))

    async def explain(
        self,
        session: AsyncSession,
        *,
        county_id: str,
        level: Level,
        subject_id: str,
        quarter: Quarter,
        events_per_kpi: int,
        derived: Derived | None = None,
    ) -> Explanation:
        """The scorecard and, per KPI, the events that produced its count."""
        if derived is None:
            # Judging the clocks is the costly read: once for the counts and the events.
            derived = await self.derived(
                session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
            )
        card = await self.scorecard(
            session,
            county_id=county_id,
            level=level,
            subject_id=subject_id,
            quarter=quarter,
            derived=derived,
        )
        events = await contributing_events(
            session,
            county_id=county_id,
            quarter=quarter,
            level=level,
            subject_id=subject_id,
            limit=events_per_kpi,
            derived=derived,
        )
        cases = await cases_of_events(
            session,
            county_id=county_id,
            event_ids=[event for ids in events.values() for event in ids],
        )
        return Explanation(card, events, cases)
