"""Scoring schemes as versioned data: the version in force on a quarter's first day scores it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter

DEFAULT_RULES_FILE = Path(__file__).with_name("scoring_rules.yaml")


@dataclass(frozen=True)
class CountRule:
    """`points_each` for every `per` counted, at most `cap` points (a bonus or a deduction)."""

    kpi: str
    points_each: Decimal
    cap: Decimal
    per: int = 1


@dataclass(frozen=True)
class RatioRule:
    """Up to `points` in proportion to kpi / of (e.g. clues disposed within the time limit)."""

    kpi: str
    of: str
    points: Decimal


@dataclass(frozen=True)
class LevelScheme:
    """How one level (zone, township, person) earns its quantitative points."""

    base: Decimal
    bonuses: tuple[CountRule, ...]
    ratios: tuple[RatioRule, ...]
    deductions: tuple[CountRule, ...]

    def kpis(self) -> set[str]:
        """Every KPI the scheme reads."""
        names = {rule.kpi for rule in (*self.bonuses, *self.deductions)}
        return names | {rule.kpi for rule in self.ratios} | {rule.of for rule in self.ratios}


@dataclass(frozen=True)
class Tiers:
    """Reward list (top) and correction list (bottom) sizes (奖优罚劣)."""

    top: int
    bottom: int


@dataclass(frozen=True)
class ScoringRules:
    """One version of a county's assessment scheme."""

    version: str
    effective_from: date
    total_points: Decimal
    quantitative_points: Decimal
    qualitative_points: Decimal
    tiers: Tiers
    levels: Mapping[Level, LevelScheme]


class RulesError(ValueError):
    """A scoring rules document is malformed."""


def rules_in_force(versions: Sequence[ScoringRules], quarter: Quarter) -> ScoringRules:
    """The newest version effective on the quarter's first day.

    Of versions effective on the same day the one listed last is in force: a correction is
    added after the version it corrects, which stays in the file as it was used.
    """
    day = quarter.first_day()
    candidates = [
        (rules.effective_from, index, rules)
        for index, rules in enumerate(versions)
        if rules.effective_from <= day
    ]
    if not candidates:
        raise LookupError(f"no scoring rules are in force for {quarter}")
    return max(candidates, key=lambda item: (item[0], item[1]))[2]


def load_rules(path: Path = DEFAULT_RULES_FILE) -> list[ScoringRules]:
    """Every version in a YAML rules file, validated."""
    return parse_rules(yaml.safe_load(path.read_text(encoding="utf-8")))


def parse_rules(document: Any) -> list[ScoringRules]:
    """Versions from a parsed YAML document; raises RulesError naming the problem."""
    if not isinstance(document, dict) or not isinstance(document.get("versions"), list):
        raise RulesError("the document needs a `versions` list")
    versions = [_version(item) for item in document["versions"]]
    names = [rules.version for rules in versions]
    if len(set(names)) != len(names):
        raise RulesError("version names must be unique")
    return versions


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RulesError(f"{where} must be a number")
    number = Decimal(str(value))
    if number < 0:
        raise RulesError(f"{where} must not be negative")
    return number


def _count_rule(item: Any, where: str) -> CountRule:
    if not isinstance(item, dict) or not item.get("kpi"):
        raise RulesError(f"{where} needs a kpi")
    per = int(item.get("per", 1))
    if per < 1:
        raise RulesError(f"{where}.per must be at least 1")
    return CountRule(
        kpi=str(item["kpi"]),
        points_each=_decimal(item.get("points_each"), f"{where}.points_each"),
        cap=_decimal(item.get("cap"), f"{where}.cap"),
        per=per,
    )


def _ratio_rule(item: Any, where: str) -> RatioRule:
    if not isinstance(item, dict) or not item.get("kpi") or not item.get("of"):
        raise RulesError(f"{where} needs kpi and of")
    return RatioRule(
        kpi=str(item["kpi"]),
        of=str(item["of"]),
        points=_decimal(item.get("points"), f"{where}.points"),
    )


def _level(item: Any, where: str, quantitative: Decimal) -> LevelScheme:
    if not isinstance(item, dict):
        raise RulesError(f"{where} must be a mapping")
    scheme = LevelScheme(
        base=_decimal(item.get("base"), f"{where}.base"),
        bonuses=tuple(
            _count_rule(rule, f"{where}.bonuses[{i}]")
            for i, rule in enumerate(item.get("bonuses") or [])
        ),
        ratios=tuple(
            _ratio_rule(rule, f"{where}.ratios[{i}]")
            for i, rule in enumerate(item.get("ratios") or [])
        ),
        deductions=tuple(
            _count_rule(rule, f"{where}.deductions[{i}]")
            for i, rule in enumerate(item.get("deductions") or [])
        ),
    )
    best = (
        scheme.base
        + sum((rule.cap for rule in scheme.bonuses), Decimal(0))
        + sum((rule.points for rule in scheme.ratios), Decimal(0))
    )
    if best > quantitative:
        # A scheme whose maximum exceeds its share would silently be clipped: refuse it.
        raise RulesError(f"{where}: base + bonus caps + ratios ({best}) exceed {quantitative}")
    return scheme


def _version(item: Any) -> ScoringRules:
    if not isinstance(item, dict) or not item.get("version"):
        raise RulesError("every version needs a `version` name")
    where = str(item["version"])
    effective = item.get("effective_from")
    if not isinstance(effective, date):
        raise RulesError(f"{where}.effective_from must be a date (YYYY-MM-DD)")
    total = _decimal(item.get("total_points"), f"{where}.total_points")
    quantitative = _decimal(item.get("quantitative_points"), f"{where}.quantitative_points")
    qualitative = _decimal(item.get("qualitative_points"), f"{where}.qualitative_points")
    if quantitative + qualitative != total:
        raise RulesError(f"{where}: quantitative + qualitative must equal total_points")
    tiers = item.get("tiers") or {}
    levels = item.get("levels") or {}
    if not isinstance(levels, dict) or not levels:
        raise RulesError(f"{where}.levels must name at least one level")
    try:
        parsed_levels = {
            Level(name): _level(scheme, f"{where}.levels.{name}", quantitative)
            for name, scheme in levels.items()
        }
    except ValueError as exc:
        if isinstance(exc, RulesError):
            raise
        raise RulesError(f"{where}.levels: {exc}") from exc
    return ScoringRules(
        version=where,
        effective_from=effective,
        total_points=total,
        quantitative_points=quantitative,
        qualitative_points=qualitative,
        tiers=Tiers(top=int(tiers.get("top", 0)), bottom=int(tiers.get("bottom", 0))),
        levels=parsed_levels,
    )
