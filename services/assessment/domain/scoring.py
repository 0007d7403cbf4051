"""Scoring one unit for one quarter: base + bonuses + ratios − deductions, then qualitative."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from services.assessment.domain.kpis import Level
from services.assessment.domain.scoring_rules import CountRule, ScoringRules

CENT = Decimal("0.01")


class ComponentKind(enum.StrEnum):
    """Where a part of the score comes from."""

    BASE = "base"
    BONUS = "bonus"
    RATIO = "ratio"
    DEDUCTION = "deduction"
    QUALITATIVE = "qualitative"


@dataclass(frozen=True)
class ScoreComponent:
    """One line of a score's explanation; `points` is signed (deductions are negative)."""

    kind: ComponentKind
    kpi: str
    count: int
    points: Decimal
    of_kpi: str = ""
    of_count: int = 0


@dataclass(frozen=True)
class Score:
    """A unit's score for a quarter and how it was reached."""

    rules_version: str
    quantitative: Decimal
    qualitative: Decimal
    total: Decimal
    components: tuple[ScoreComponent, ...]


def _count_points(rule: CountRule, count: int) -> Decimal:
    steps = max(count, 0) // rule.per
    return min(rule.cap, rule.points_each * steps)


def score_unit(
    rules: ScoringRules,
    level: Level,
    counts: Mapping[str, int],
    qualitative_entries: Sequence[Decimal] = (),
) -> Score:
    """Score a unit from its KPI counts and the assessors' qualitative marks (averaged)."""
    scheme = rules.levels.get(level)
    if scheme is None:
        raise LookupError(f"scoring rules {rules.version} do not score the {level} level")
    components = [ScoreComponent(ComponentKind.BASE, "", 0, scheme.base)]
    for rule in scheme.bonuses:
        count = counts.get(rule.kpi, 0)
        components.append(
            ScoreComponent(ComponentKind.BONUS, rule.kpi, count, _count_points(rule, count))
        )
    for ratio in scheme.ratios:
        done, of = counts.get(ratio.kpi, 0), counts.get(ratio.of, 0)
        # Nothing to measure earns nothing: a zone cannot be "100% on time" with no clues.
        share = Decimal(min(done, of)) / Decimal(of) if of > 0 else Decimal(0)
        components.append(
            ScoreComponent(
                ComponentKind.RATIO,
                ratio.kpi,
                done,
                (ratio.points * share).quantize(CENT, ROUND_HALF_UP),
                of_kpi=ratio.of,
                of_count=of,
            )
        )
    for rule in scheme.deductions:
        count = counts.get(rule.kpi, 0)
        components.append(
            ScoreComponent(ComponentKind.DEDUCTION, rule.kpi, count, -_count_points(rule, count))
        )
    raw = sum((component.points for component in components), Decimal(0))
    quantitative = min(rules.quantitative_points, max(Decimal(0), raw))
    qualitative = Decimal(0)
    if qualitative_entries:
        mean = sum(qualitative_entries, Decimal(0)) / len(qualitative_entries)
        qualitative = min(rules.qualitative_points, mean).quantize(CENT, ROUND_HALF_UP)
        components.append(
            ScoreComponent(ComponentKind.QUALITATIVE, "", len(qualitative_entries), qualitative)
        )
    quantitative = quantitative.quantize(CENT, ROUND_HALF_UP)
    return Score(
        rules_version=rules.version,
        quantitative=quantitative,
        qualitative=qualitative,
        total=quantitative + qualitative,
        components=tuple(components),
    )
