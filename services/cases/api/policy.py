"""Who may read what in cases: the one place its authorisation rules live."""

from __future__ import annotations

from services.runtime.grpc.errors import NotFound, PermissionDenied
from services.runtime.tokens import ALL_ZONES, Principal

CLUE_READERS = frozenset(
    {"case_officer", "zone_chief", "deputy_chief", "county_leadership", "assessor"}
)


def authorize_read_clue(
    principal: Principal, *, county_id: str, zone_id: str, clue_id: str
) -> None:
    """A clue is visible to a reader scoped to its county and zone.

    Outside the caller's county it answers NOT_FOUND, so a county cannot even learn that
    another county's clue exists.
    """
    if principal.roles.isdisjoint(CLUE_READERS):
        raise PermissionDenied(f"{principal.subject} may not read clues")
    if not principal.can_see_county(county_id):
        raise NotFound(f"clue {clue_id}")
    if not principal.can_see_zone(county_id, zone_id):
        raise PermissionDenied(f"{principal.subject} is not scoped to zone {zone_id!r}")


def readable_zones(principal: Principal, *, county_id: str, zone_id: str) -> list[str] | None:
    """Zones a list call may cover: None means every zone of the county."""
    if principal.roles.isdisjoint(CLUE_READERS):
        raise PermissionDenied(f"{principal.subject} may not read clues")
    if not principal.can_see_county(county_id):
        raise PermissionDenied(f"{principal.subject} is not scoped to county {county_id!r}")
    if zone_id:
        if not principal.can_see_zone(county_id, zone_id):
            raise PermissionDenied(f"{principal.subject} is not scoped to zone {zone_id!r}")
        return [zone_id]
    if ALL_ZONES in principal.zone_ids:
        return None
    return list(principal.zone_ids)
