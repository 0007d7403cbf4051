"""Every version of intake's data-driven rules, and which one applies on a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.intake.domain.rules import IntakeRules, rules_in_force
from services.intake.domain.taxonomy import Taxonomy, taxonomy_in_force


@dataclass(frozen=True)
class RuleBook:
    """The taxonomy versions and the rule versions loaded at start-up."""

    taxonomies: tuple[Taxonomy, ...]
    rules: tuple[IntakeRules, ...]

    def taxonomy_on(self, day: date) -> Taxonomy:
        """The taxonomy in force on `day`."""
        return taxonomy_in_force(self.taxonomies, day)

    def rules_on(self, day: date) -> IntakeRules:
        """The rules in force on `day`."""
        return rules_in_force(self.rules, day)
