"""Draw rules as versioned data: a draw keeps the version in force on its date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DrawRules:
    """One version of a county's team-draw rules."""

    version: str
    effective_from: date
    # A person more than this many open assignments above the least-loaded eligible person
    # is left out of the draw, unless too few people remain.
    max_workload_distance: int


DEFAULT_DRAW_RULES = DrawRules(
    version="draw-default-2026.1", effective_from=date(2026, 1, 1), max_workload_distance=1
)


def draw_rules_in_force(versions: list[DrawRules], on: date) -> DrawRules:
    """The newest version effective on `on`."""
    candidates = [rules for rules in versions if rules.effective_from <= on]
    if not candidates:
        raise LookupError(f"no draw rules are in force on {on.isoformat()}")
    return max(candidates, key=lambda rules: rules.effective_from)
