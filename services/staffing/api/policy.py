"""Who may do what in staffing: the one place its authorisation rules live.

A token's subject is the caller's person id on the register.
"""

from __future__ import annotations

from services.runtime.grpc.errors import NotFound, PermissionDenied, shorten
from services.runtime.tokens import ALL_ZONES, Principal

COUNTY_LEADERSHIP = "county_leadership"
COMMISSION_HEAD = "commission_head"
ZONE_CHIEF = "zone_chief"
ZONE_MANAGERS = frozenset({ZONE_CHIEF, "deputy_chief"})
# Informant identities (村级监察信息员) are visible only to these roles of the county.
INFORMANT_READERS = frozenset({"intake_officer", "custodian"})
DRAW_READERS = frozenset({COUNTY_LEADERSHIP, COMMISSION_HEAD, "assessor", *ZONE_MANAGERS})
# Case officers raise recusal requests on behalf of a subject or a reporter.
RECUSAL_REQUESTERS = frozenset({COUNTY_LEADERSHIP, COMMISSION_HEAD, "case_officer", *ZONE_MANAGERS})


def _in_county(principal: Principal, county_id: str, what: str) -> None:
    # Another county's records answer NOT_FOUND: a county cannot learn they exist.
    if not principal.can_see_county(county_id):
        raise NotFound(what)


def manages_zone(principal: Principal, *, county_id: str, zone_id: str | None) -> bool:
    """County leadership manages every zone; a zone chief or deputy manages their own."""
    if not principal.can_see_county(county_id):
        return False
    if principal.roles & {COUNTY_LEADERSHIP, COMMISSION_HEAD}:
        return True
    if principal.roles.isdisjoint(ZONE_MANAGERS) or zone_id is None:
        return False
    return principal.can_see_zone(county_id, zone_id)


def authorize_read_person(
    principal: Principal, *, county_id: str, zone_id: str | None, person_id: str, informant: bool
) -> None:
    """Staff read their own record; managers read their zone's; informants only by a few roles."""
    _in_county(principal, county_id, f"person {person_id}")
    if informant:
        if principal.roles.isdisjoint(INFORMANT_READERS):
            # Not even confirming that this id is an informant.
            raise NotFound("person", person_id)
        return
    if principal.subject == person_id:
        return
    if manages_zone(principal, county_id=county_id, zone_id=zone_id):
        return
    if not principal.roles.isdisjoint(INFORMANT_READERS):
        return
    raise PermissionDenied(f"{principal.subject} may not read person {shorten(person_id)}")


def listable_zones(
    principal: Principal, *, county_id: str, zone_id: str
) -> tuple[list[str] | None, bool]:
    """Zones a ListPeople call may cover (None: all) and whether informants are included."""
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    informants = not principal.roles.isdisjoint(INFORMANT_READERS)
    whole_county = bool(principal.roles & {COUNTY_LEADERSHIP, COMMISSION_HEAD}) or informants
    if zone_id:
        if whole_county or manages_zone(principal, county_id=county_id, zone_id=zone_id):
            return [zone_id], informants
        raise PermissionDenied(f"{principal.subject} does not manage zone {shorten(zone_id)!r}")
    if whole_county or (ALL_ZONES in principal.zone_ids and principal.roles & ZONE_MANAGERS):
        return None, informants
    if principal.roles.isdisjoint(ZONE_MANAGERS):
        raise PermissionDenied(f"{principal.subject} may not list people")
    return list(principal.zone_ids), informants


def authorize_read_draw(
    principal: Principal, *, county_id: str, zone_id: str, draw_id: str
) -> None:
    """Draws are explained to the zone's managers, county leadership and assessors."""
    _in_county(principal, county_id, f"draw {draw_id}")
    if principal.roles.isdisjoint(DRAW_READERS):
        raise PermissionDenied(f"{principal.subject} may not read draws")
    if manages_zone(principal, county_id=county_id, zone_id=zone_id):
        return
    if "assessor" in principal.roles:
        return
    raise PermissionDenied(f"{principal.subject} does not manage zone {shorten(zone_id)!r}")


def authorize_declare_conflict(
    principal: Principal, *, county_id: str, zone_id: str | None, person_id: str
) -> None:
    """A person declares their own conflicts; their zone's managers may record them too."""
    _in_county(principal, county_id, f"person {person_id}")
    if principal.subject == person_id:
        return
    if manages_zone(principal, county_id=county_id, zone_id=zone_id):
        return
    raise PermissionDenied(
        f"{principal.subject} may not declare conflicts for {shorten(person_id)}"
    )


def authorize_request_recusal(
    principal: Principal, *, county_id: str, zone_id: str, person_id: str, raised_by: str
) -> None:
    """A staff member asks for their own recusal; a subject's or reporter's goes via officers."""
    _in_county(principal, county_id, f"person {person_id}")
    if raised_by == "staff_member":
        if principal.subject == person_id:
            return
        raise PermissionDenied("a staff member's recusal is requested by that staff member")
    if principal.roles.isdisjoint(RECUSAL_REQUESTERS):
        raise PermissionDenied(f"{principal.subject} may not file recusal requests")
    if principal.roles & {COUNTY_LEADERSHIP, COMMISSION_HEAD, "case_officer"}:
        return
    if not manages_zone(principal, county_id=county_id, zone_id=zone_id):
        raise PermissionDenied(f"{principal.subject} does not manage zone {shorten(zone_id)!r}")


def authorize_decide_recusal(principal: Principal, *, county_id: str, recusal_id: str) -> None:
    """Only the commission head decides recusals."""
    _in_county(principal, county_id, f"recusal {recusal_id}")
    if COMMISSION_HEAD not in principal.roles:
        raise PermissionDenied("recusals are decided by the commission head")


def authorize_answer_assignment(
    principal: Principal, *, county_id: str, person_id: str, draw_id: str
) -> None:
    """Only the drawn person accepts or declines their assignment."""
    _in_county(principal, county_id, f"draw {draw_id}")
    if principal.subject != person_id:
        raise PermissionDenied(f"{principal.subject} was not drawn in {shorten(draw_id)}")


def authorize_override(principal: Principal, *, county_id: str, zone_id: str, draw_id: str) -> None:
    """Only the zone chief of the draw's zone overrides it."""
    _in_county(principal, county_id, f"draw {draw_id}")
    if ZONE_CHIEF not in principal.roles or not principal.can_see_zone(county_id, zone_id):
        raise PermissionDenied(
            f"only the chief of zone {shorten(zone_id)!r} may override its draws"
        )


def authorize_record_staff_records(
    principal: Principal, *, county_id: str, zone_id: str | None, person_id: str
) -> None:
    """Training and attendance are recorded by the person's zone managers or county leadership."""
    _in_county(principal, county_id, f"person {person_id}")
    if manages_zone(principal, county_id=county_id, zone_id=zone_id):
        return
    raise PermissionDenied(f"{principal.subject} may not record for {shorten(person_id)}")


def authorize_read_staff_records(
    principal: Principal, *, county_id: str, zone_id: str | None, person_id: str
) -> None:
    """A person reads their own training and attendance; managers and assessors read them too."""
    _in_county(principal, county_id, f"person {person_id}")
    if principal.subject == person_id or "assessor" in principal.roles:
        return
    if manages_zone(principal, county_id=county_id, zone_id=zone_id):
        return
    raise PermissionDenied(f"{principal.subject} may not read records of {shorten(person_id)}")


STRUCTURE_EDITORS = frozenset({COUNTY_LEADERSHIP, COMMISSION_HEAD})


def authorize_edit_person(
    principal: Principal, *, county_id: str, zone_ids: set[str | None], informant: bool
) -> None:
    """Managers of the person's zones (before and after) edit them; informants: a few roles."""
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    if informant:
        if principal.roles.isdisjoint(INFORMANT_READERS):
            raise PermissionDenied("informants are registered by intake officers and custodians")
        return
    for zone_id in zone_ids:
        if not manages_zone(principal, county_id=county_id, zone_id=zone_id):
            raise PermissionDenied(f"{principal.subject} does not manage zone {shorten(zone_id)!r}")


def authorize_edit_structure(principal: Principal, *, county_id: str) -> None:
    """Zones and townships are placed by county leadership."""
    if not principal.can_see_county(county_id) or principal.roles.isdisjoint(STRUCTURE_EDITORS):
        raise PermissionDenied("zones and townships are placed by county leadership")


def authorize_read_structure(principal: Principal, *, county_id: str, what: str) -> None:
    """Everyone of the county sees how it is organised in zones and townships."""
    _in_county(principal, county_id, what)
