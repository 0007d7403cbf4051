"""Every version of intake's data-driven rules, and which one applies on a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.intake.domain.rules import IntakeRules, rules_in_force
from services.intake.domain.taxonomy import Taxonomy, taxonomy_in_force
from services.working_calendar import NATIONAL_CALENDAR, WorkingCalendar


@dataclass(frozen=True)
class RuleBook:
    """The taxonomy versions, the rule versions and the county's calendar loaded at start-up."""

    taxonomies: tuple[Taxonomy, ...]
    rules: tuple[IntakeRules, ...]
    # Working days are counted on the county's one calendar, shared with cases.
    calendar: WorkingCalendar = NATIONAL_CALENDAR

    def taxonomy_on(self, day: date) -> Taxonomy:
        """The taxonomy in force on `day`."""
        return taxonomy_in_force(self.taxonomies, day)

    def rules_on(self, day: date) -> IntakeRules:
        """The rules in force on `day`."""
        return rules_in_force(self.rules, day)

    def taxonomy_at(self, moment: datetime) -> Taxonomy:
        """The taxonomy in force at `moment`, on the county's date (not the UTC one)."""
        return self.taxonomy_on(self.calendar.local_date(moment))

    def rules_at(self, moment: datetime) -> IntakeRules:
        """The rules in force at `moment`: a version takes effect at the county's midnight."""
        return self.rules_on(self.calendar.local_date(moment))
