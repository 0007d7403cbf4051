"""Who may read and act on what in cases: the one place its authorisation rules live."""

from __future__ import annotations

from dataclasses import dataclass

from services.cases.domain.casefile import CaseFile
from services.runtime.grpc.errors import NotFound, PermissionDenied, shorten
from services.runtime.tokens import ALL_ZONES, Principal

CLUE_READERS = frozenset(
    {"case_officer", "zone_chief", "deputy_chief", "county_leadership", "assessor"}
)
# County leadership sees every case of its county (the party committee approves some steps);
# so does the city commission for the counties its token covers (it answers second reviews).
COUNTY_LEADERSHIP = frozenset(
    {"county_leadership", "party_committee", "commission_head", "city_commission"}
)
# The sanctioned person: may file an appeal on their own case, and do nothing else.
CASE_SUBJECT = "case_subject"
# The zone chief (区长) and deputy chief (副区长) see every case of the zones they lead.
ZONE_LEADERSHIP = frozenset({"zone_chief", "deputy_chief"})
# Who opens, verifies and reads rectification items (the zone follows each item up).
RECTIFICATION_LEADS = COUNTY_LEADERSHIP | ZONE_LEADERSHIP
RECTIFICATION_REPORTERS = RECTIFICATION_LEADS | {"case_officer", "supervision_staff"}


def authorize_read_clue(
    principal: Principal,
    *,
    county_id: str,
    zone_id: str,
    clue_id: str,
    recused: frozenset[str] = frozenset(),
) -> None:
    """A clue is visible to a reader scoped to its county and zone, unless they are recused.

    Outside the caller's county it answers NOT_FOUND, so a county cannot even learn that
    another county's clue exists.
    """
    if principal.roles.isdisjoint(CLUE_READERS):
        raise PermissionDenied(f"{principal.subject} may not read clues")
    if not principal.can_see_county(county_id):
        raise NotFound("clue", clue_id)
    if principal.subject in recused:
        raise PermissionDenied(f"{principal.subject} has been recused from {shorten(clue_id)}")
    if not principal.can_see_zone(county_id, zone_id):
        raise PermissionDenied(f"{principal.subject} is not scoped to zone {shorten(zone_id)!r}")


def readable_zones(principal: Principal, *, county_id: str, zone_id: str) -> list[str] | None:
    """Zones a clue list call may cover: None means every zone of the county."""
    if principal.roles.isdisjoint(CLUE_READERS):
        raise PermissionDenied(f"{principal.subject} may not read clues")
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    if zone_id:
        if not principal.can_see_zone(county_id, zone_id):
            raise PermissionDenied(
                f"{principal.subject} is not scoped to zone {shorten(zone_id)!r}"
            )
        return [zone_id]
    if ALL_ZONES in principal.zone_ids:
        return None
    return list(principal.zone_ids)


def authorize_case(principal: Principal, *, county_id: str, zone_id: str, file: CaseFile) -> None:
    """A case is visible to its current team, its zone's chief and deputy, county leadership.

    The current team is the hearing team during hearing and the review team during appeal
    review; a recused person loses access at once, whatever their role. Another county's
    case answers NOT_FOUND.
    """
    if not principal.can_see_county(county_id):
        raise NotFound("case", file.case_id)
    if principal.subject in file.recused:
        raise PermissionDenied(f"{principal.subject} has been recused from {file.case_id}")
    if not principal.roles.isdisjoint(COUNTY_LEADERSHIP):
        return
    if not principal.roles.isdisjoint(ZONE_LEADERSHIP) and principal.can_see_zone(
        county_id, zone_id
    ):
        return
    if principal.subject in file.current_team():
        return
    raise PermissionDenied(f"{principal.subject} may not see case {file.case_id}")


def authorize_subject(
    principal: Principal, *, county_id: str, subject_key: str, case_id: str, action: str
) -> None:
    """A sanctioned person (token subject = the case's subject key) may only file an appeal.

    They never read the file: the answer to their appeal carries the step, not the case.
    """
    if not principal.can_see_county(county_id):
        raise NotFound("case", case_id)
    if action != "file_appeal" or principal.subject != subject_key:
        raise PermissionDenied(f"{principal.subject} may only appeal a decision on themselves")


@dataclass(frozen=True)
class CaseListScope:
    """Which cases of a county a list call may return."""

    county_id: str
    # Zones the caller leads or oversees (None: every zone); cases there are visible.
    led_zones: list[str] | None
    # The caller also sees the cases whose current team they are on.
    person_id: str


def case_list_scope(principal: Principal, *, county_id: str) -> CaseListScope:
    """The scope of a case list call; recused cases are excluded by the query itself."""
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    led: list[str] | None = []
    if not principal.roles.isdisjoint(COUNTY_LEADERSHIP):
        led = None
    elif not principal.roles.isdisjoint(ZONE_LEADERSHIP):
        led = None if ALL_ZONES in principal.zone_ids else list(principal.zone_ids)
    return CaseListScope(county_id=county_id, led_zones=led, person_id=principal.subject)


RECTIFICATION_ROLES = {
    "open": RECTIFICATION_LEADS,
    "verify": RECTIFICATION_LEADS,
    "report": RECTIFICATION_REPORTERS,
    "read": RECTIFICATION_REPORTERS,
}


def authorize_rectification(
    principal: Principal, *, county_id: str, zone_id: str, action: str
) -> None:
    """Zone and county leadership open and verify items; staff of the zone report and read."""
    if principal.roles.isdisjoint(RECTIFICATION_ROLES[action]):
        raise PermissionDenied(f"{principal.subject} may not {action} rectification items")
    if not principal.can_see_county(county_id):
        raise NotFound("rectification item")
    if not principal.can_see_zone(county_id, zone_id):
        raise PermissionDenied(f"{principal.subject} is not scoped to zone {shorten(zone_id)!r}")


def readable_rectification_zones(
    principal: Principal, *, county_id: str, zone_id: str
) -> list[str] | None:
    """Zones a rectification list may cover: None means every zone of the county."""
    if principal.roles.isdisjoint(RECTIFICATION_ROLES["read"]):
        raise PermissionDenied(f"{principal.subject} may not read rectification items")
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    if zone_id:
        if not principal.can_see_zone(county_id, zone_id):
            raise PermissionDenied(
                f"{principal.subject} is not scoped to zone {shorten(zone_id)!r}"
            )
        return [zone_id]
    if ALL_ZONES in principal.zone_ids:
        return None
    return list(principal.zone_ids)


# Who decides that clues belong together or that a case is worked jointly across townships.
LINK_DECIDERS = COUNTY_LEADERSHIP | ZONE_LEADERSHIP


def authorize_link(principal: Principal, *, county_id: str, zone_id: str, file: CaseFile) -> None:
    """Zone or county leadership who can see the file link clues and declare joint cases."""
    authorize_case(principal, county_id=county_id, zone_id=zone_id, file=file)
    if principal.roles.isdisjoint(LINK_DECIDERS):
        raise PermissionDenied(f"{principal.subject} may not link clues or declare joint cases")
