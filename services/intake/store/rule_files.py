"""Reads intake's rule data files (YAML) into the validated domain rule book."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.intake.domain.rulebook import RuleBook
from services.intake.domain.rules import parse_rules
from services.intake.domain.taxonomy import parse_taxonomies
from services.working_calendar import NATIONAL_CALENDAR, WorkingCalendar

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
TAXONOMY_FILE = "allegation_taxonomy.yaml"
RULES_FILE = "intake_rules.yaml"


def load_rule_book(
    directory: Path = RULES_DIR, calendar: WorkingCalendar = NATIONAL_CALENDAR
) -> RuleBook:
    """Load and validate both files; a malformed file stops the service from starting."""
    taxonomy = yaml.safe_load((directory / TAXONOMY_FILE).read_text(encoding="utf-8"))
    rules = yaml.safe_load((directory / RULES_FILE).read_text(encoding="utf-8"))
    return RuleBook(tuple(parse_taxonomies(taxonomy)), tuple(parse_rules(rules)), calendar)
