"""Who may do what in intake: the one place its authorisation rules live."""

from __future__ import annotations

from services.runtime.grpc.auth import require
from services.runtime.tokens import Principal

SUBMITTERS = frozenset({"intake_officer", "zone_chief", "deputy_chief", "county_leadership"})


def authorize_submit(principal: Principal, *, county_id: str, zone_id: str) -> None:
    """Submitting a report needs an intake role scoped to the report's county and zone."""
    require(principal, roles=SUBMITTERS, county_id=county_id, zone_id=zone_id)
