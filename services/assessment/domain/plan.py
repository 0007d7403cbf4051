"""The annual work plan by quarter: themes and per-zone targets, and progress against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# DOMAIN.md §3: the customary themes, offered when a plan names none for a quarter.
CUSTOMARY_THEMES: Mapping[int, str] = {
    1: "training and team building",
    2: "special inspections and campaigns",
    3: "evaluation and rectification",
    4: "summing up and spreading what works",
}


@dataclass(frozen=True)
class Target:
    """A zone must reach `target` of `kpi` in quarter `quarter` of the plan's year."""

    quarter: int
    zone_id: str
    kpi: str
    target: int


@dataclass(frozen=True)
class WorkPlan:
    """One county's plan for one year."""

    county_id: str
    year: int
    themes: Mapping[int, str]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class TargetProgress:
    """How far a zone is towards one target."""

    target: Target
    actual: int
    percent: Decimal
    met: bool


def plan_problems(plan: WorkPlan, known_kpis: set[str]) -> list[tuple[str, str]]:
    """(field, problem) for everything wrong with a plan; empty when it is valid."""
    problems: list[tuple[str, str]] = []
    if not 2000 <= plan.year <= 2100:
        problems.append(("year", "must be between 2000 and 2100"))
    for number in plan.themes:
        if number not in (1, 2, 3, 4):
            problems.append(("themes", f"quarter {number} is not 1..4"))
    seen: set[tuple[int, str, str]] = set()
    for index, target in enumerate(plan.targets):
        where = f"targets[{index}]"
        if target.quarter not in (1, 2, 3, 4):
            problems.append((f"{where}.quarter", "must be 1..4"))
        if not target.zone_id:
            problems.append((f"{where}.zone_id", "is required"))
        # A breakdown such as `decisions.warning` is known when its counter is.
        if target.kpi.split(".", 1)[0] not in known_kpis:
            problems.append((f"{where}.kpi", f"{target.kpi!r} is not a known KPI"))
        if target.target <= 0:
            problems.append((f"{where}.target", "must be positive"))
        key = (target.quarter, target.zone_id, target.kpi)
        if key in seen:
            problems.append((where, "repeats a quarter, zone and KPI"))
        seen.add(key)
    return problems


def theme_of(plan: WorkPlan, quarter: int) -> str:
    """The plan's theme for a quarter, or the customary one."""
    return plan.themes.get(quarter) or CUSTOMARY_THEMES[quarter]


def progress(target: Target, actual: int) -> TargetProgress:
    """Progress of `actual` against `target`."""
    percent = (Decimal(actual) * 100 / Decimal(target.target)).quantize(
        Decimal("0.1"), ROUND_HALF_UP
    )
    return TargetProgress(target, actual, percent, actual >= target.target)
