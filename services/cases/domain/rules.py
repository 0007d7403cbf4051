"""Procedural rules as versioned data: a clue or case keeps the version it started under."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from services.cases.domain.rulebook import load_rule_set
from services.cases.domain.ruleset import (
    ExtensionRule,
    RuleSet,
    TimeLimit,
    TransitionRule,
    add_months,
)

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_RULES_FILE",
    "ExtensionRule",
    "RuleSet",
    "TimeLimit",
    "TransitionRule",
    "add_months",
    "rules_in_force",
]


def rules_in_force(versions: list[RuleSet], on: date) -> RuleSet:
    """The newest version effective on `on`."""
    candidates = [rules for rules in versions if rules.effective_from <= on]
    if not candidates:
        raise LookupError(f"no rule set is in force on {on.isoformat()}")
    return max(candidates, key=lambda rules: rules.effective_from)


DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")
# The national default shipped as data (default_rules.yaml); counties add their own versions.
DEFAULT_RULES = load_rule_set(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
