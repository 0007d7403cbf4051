"""Facts (something countable happened) and the projection increments they fan out to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter

# Zone ids that name no zone: empty (an older staffing's county staff) and `*` (county-wide).
NOT_A_ZONE = frozenset({"", "*"})


@dataclass(frozen=True)
class Fact:
    """One countable occurrence, attributed to a zone and optionally a township and people."""

    kpi: str
    occurred_at: datetime
    county_id: str
    zone_id: str
    delta: int = 1
    township_id: str | None = None
    person_ids: tuple[str, ...] = ()
    # Some facts are about people or townships only (e.g. a member's home township).
    count_for_zone: bool = True


class KpiIncrement(NamedTuple):
    """Add `delta` to one projection row.

    A named tuple, not a frozen dataclass: a rebuild makes one or two per event, and a frozen
    dataclass's __init__ cost a fifth of the rebuild's Python time (issue 14's profile).
    """

    county_id: str
    zone_id: str
    level: Level
    subject_id: str
    quarter: Quarter
    kpi: str
    delta: int


def increments_of(fact: Fact, calendar: AssessmentCalendar) -> list[KpiIncrement]:
    """The rows a fact adds to, in the quarter of its own time."""
    quarter = calendar.quarter_of(fact.occurred_at)
    targets: list[tuple[Level, str]] = []
    # No zone row for "" or the county-wide "*": neither is a zone to rank (issue 13's blank
    # seventh zone); the township and people still count.
    if fact.count_for_zone and fact.zone_id not in NOT_A_ZONE:
        targets.append((Level.ZONE, fact.zone_id))
    if fact.township_id:
        targets.append((Level.TOWNSHIP, fact.township_id))
    # A person counted twice in one fact (a list with duplicates) still counts once.
    targets.extend((Level.PERSON, person) for person in dict.fromkeys(fact.person_ids))
    county, zone, kpi, delta = fact.county_id, fact.zone_id, fact.kpi, fact.delta
    return [
        KpiIncrement(county, zone, level, subject, quarter, kpi, delta)
        for level, subject in targets
    ]


def merged(increments: list[KpiIncrement]) -> list[KpiIncrement]:
    """Sum increments that touch the same row (one event may count a township twice)."""
    if len(increments) < 2:
        return increments
    totals: dict[tuple[str, str, Level, str, Quarter, str], int] = {}
    for county, zone, level, subject, quarter, kpi, delta in increments:
        key = (county, zone, level, subject, quarter, kpi)
        totals[key] = totals.get(key, 0) + delta
    return [
        KpiIncrement(county, zone, level, subject, quarter, kpi, delta)
        for (county, zone, level, subject, quarter, kpi), delta in totals.items()
    ]
