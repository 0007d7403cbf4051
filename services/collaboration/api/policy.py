"""Who may do what with assistance letters: the one place collaboration's rules live.

A token is scoped to one county. The asking side's rows hold the case reference, so reading
them needs the case's zone in scope; the asked side never sees the case. The city commission
(a token scoped to the network's city id with role `city_commission`) sees every member's
letters, reduced to what the network coordinates on: no case, question, fields or findings.
"""

from __future__ import annotations

from services.collaboration.domain.letter import Direction
from services.collaboration.store.tables import LetterRow
from services.runtime.grpc.errors import NotFound, PermissionDenied, shorten
from services.runtime.tokens import Principal

LEADERSHIP = frozenset({"county_leadership", "commission_head"})
CASE_WORKERS = frozenset({"case_officer", "zone_chief", "deputy_chief"}) | LEADERSHIP
CITY_COMMISSION = "city_commission"


def is_city_commission(principal: Principal, city_id: str) -> bool:
    """Whether the caller speaks for the network's city commission."""
    return principal.has_role(CITY_COMMISSION) and principal.can_see_county(city_id)


def authorize_request(principal: Principal, *, county_id: str, zone_id: str) -> None:
    """Case workers ask from a case of a zone their token covers."""
    if principal.roles.isdisjoint(CASE_WORKERS):
        raise PermissionDenied(f"{principal.subject} may not ask other counties for help")
    if not principal.can_see_zone(county_id, zone_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to zone {shorten(zone_id)!r} of "
            f"{shorten(county_id)!r}"
        )


def authorize_leadership(principal: Principal, *, row: LetterRow, step: str) -> None:
    """Approving (asking side) and accepting or declining (asked side) is leadership's."""
    authorize_read(principal, row=row)
    if principal.roles.isdisjoint(LEADERSHIP):
        raise PermissionDenied(f"{principal.subject} may not {step} letters (county leadership)")


def authorize_answer(principal: Principal, *, row: LetterRow) -> None:
    """The asked county's case workers answer."""
    authorize_read(principal, row=row)
    if row.direction != Direction.INBOUND:
        raise PermissionDenied("only the asked county answers a letter")


def authorize_read(principal: Principal, *, row: LetterRow) -> None:
    """The asking side needs the case's zone in scope; the asked side its county's workers."""
    if not principal.can_see_county(row.county_id):
        raise NotFound("letter", row.letter_id)
    if principal.roles.isdisjoint(CASE_WORKERS):
        raise PermissionDenied(f"{principal.subject} may not read letters")
    # County leadership reads every zone's letters; others only their zones' cases'.
    zone_bound = row.direction == Direction.OUTBOUND and principal.roles.isdisjoint(LEADERSHIP)
    if zone_bound and not principal.can_see_zone(row.county_id, row.zone_id or ""):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to zone {shorten(row.zone_id)!r}"
        )


def listable(principal: Principal, *, county_id: str) -> None:
    """Listing a county's letters: its case workers (rows then filtered by zone)."""
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    if principal.roles.isdisjoint(CASE_WORKERS):
        raise PermissionDenied(f"{principal.subject} may not read letters")


def visible_in_list(principal: Principal, row: LetterRow) -> bool:
    """Whether a listed row is one the caller may read."""
    try:
        authorize_read(principal, row=row)
    except (NotFound, PermissionDenied):
        return False
    return True
