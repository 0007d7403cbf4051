"""Who may see and enter what in assessment: the one place its authorisation rules live.

Assessors and county leadership see everything in their county; a zone chief (or deputy)
sees their zone, the townships and staff counted in it, and their zone's own rank; any staff
member sees their own scorecard and rank. Only assessors enter qualitative marks; assessors and
county leadership define work plans.
"""

from __future__ import annotations

from collections.abc import Collection

from services.assessment.domain.kpis import Level
from services.runtime.grpc.auth import require
from services.runtime.grpc.errors import PermissionDenied, shorten
from services.runtime.tokens import ALL_ZONES, Principal

COUNTY_WIDE = frozenset({"assessor", "county_leadership"})
ZONE_LEADERS = frozenset({"zone_chief", "deputy_chief"})
MARKERS = frozenset({"assessor"})
PLANNERS = frozenset({"assessor", "county_leadership"})


def _in_county(principal: Principal, county_id: str) -> None:
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )


def _leads_a_zone_of(principal: Principal, zones: Collection[str]) -> bool:
    if principal.roles.isdisjoint(ZONE_LEADERS):
        return False
    return ALL_ZONES in principal.zone_ids or not set(zones).isdisjoint(principal.zone_ids)


def may_see_unit(
    principal: Principal, *, level: Level, subject_id: str, zones: Collection[str]
) -> bool:
    """Whether the caller may see this unit's score (its county already checked)."""
    if not principal.roles.isdisjoint(COUNTY_WIDE):
        return True
    if level is Level.PERSON and subject_id == principal.subject:
        return True
    unit_zones = {subject_id} if level is Level.ZONE else set(zones)
    return _leads_a_zone_of(principal, unit_zones)


def authorize_scorecard(
    principal: Principal, *, county_id: str, level: Level, subject_id: str, zones: Collection[str]
) -> None:
    """GetScorecard and ExplainScore."""
    _in_county(principal, county_id)
    if not may_see_unit(principal, level=level, subject_id=subject_id, zones=zones):
        raise PermissionDenied(
            f"{principal.subject} may not see the scorecard of {shorten(subject_id)!r}"
        )


def authorize_ranking(principal: Principal, *, county_id: str) -> None:
    """GetRanking: anyone in the county, who then sees only the entries they may see."""
    _in_county(principal, county_id)


def authorize_mark(principal: Principal, *, county_id: str) -> None:
    """RecordQualitativeScore."""
    require(principal, roles=MARKERS, county_id=county_id)


def authorize_plan(principal: Principal, *, county_id: str) -> None:
    """DefinePlan."""
    require(principal, roles=PLANNERS, county_id=county_id)


def progress_zones(
    principal: Principal, *, county_id: str, zone_id: str, what: str = "work plan progress"
) -> list[str] | None:
    """Zones whose plan progress (or campaign results) the caller may read: None means all."""
    _in_county(principal, county_id)
    if not principal.roles.isdisjoint(COUNTY_WIDE):
        return [zone_id] if zone_id else None
    if principal.roles.isdisjoint(ZONE_LEADERS):
        raise PermissionDenied(f"{principal.subject} may not read {what}")
    if zone_id:
        require(principal, roles=ZONE_LEADERS, county_id=county_id, zone_id=zone_id)
        return [zone_id]
    return None if ALL_ZONES in principal.zone_ids else list(principal.zone_ids)


def authorize_close(principal: Principal, *, county_id: str) -> None:
    """CloseQuarter: the people who answer for the assessment."""
    require(principal, roles=PLANNERS, county_id=county_id)


def authorize_report(principal: Principal, *, county_id: str, zone_id: str) -> None:
    """ExportReport: county-wide roles for any scope; a zone leader for their own zone only."""
    _in_county(principal, county_id)
    if not principal.roles.isdisjoint(COUNTY_WIDE):
        return
    if not zone_id:
        raise PermissionDenied(f"{principal.subject} may export only their own zone's report")
    require(principal, roles=ZONE_LEADERS, county_id=county_id, zone_id=zone_id)


def authorize_campaign(principal: Principal, *, county_id: str) -> None:
    """DefineCampaign."""
    require(principal, roles=PLANNERS, county_id=county_id)
