"""What a quarterly report contains (built from the projection, rendered to HTML and CSV)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from services.assessment.domain.collaboration import CollaborationSummary


@dataclass(frozen=True)
class ReportRow:
    """One unit's line in a report."""

    level: str
    subject_id: str
    zones: tuple[str, ...]
    rank: int
    tier: str
    quantitative: Decimal
    qualitative: Decimal
    total: Decimal
    counts: dict[str, int]
    # The registry's name (township, zone, staff member), "" when assessment was not told it.
    name: str = ""


@dataclass(frozen=True)
class QuarterReport:
    """A county's (or one zone's) assessment for a quarter."""

    county_id: str
    quarter: str
    zone_id: str
    rules_version: str
    rows: list[ReportRow]
    # Zone totals of earlier quarters of the year, oldest first: {zone: [(quarter, total)]}.
    trends: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)
    # (level, id) → name, for every unit the report mentions that has one.
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    # Help between counties (协查) in the quarter: `*` is the county, then its zones.
    help: dict[str, CollaborationSummary] = field(default_factory=dict)

    def label(self, level: str, subject_id: str) -> str:
        """`name (id)`, or the id alone when the unit has no name."""
        name = self.names.get((level, subject_id), "")
        return f"{name} ({subject_id})" if name else subject_id
