"""Who may do what in intake: the one place its authorisation rules live."""

from __future__ import annotations

from datetime import datetime

from services.runtime.backentry import check_back_entry
from services.runtime.grpc.auth import require
from services.runtime.grpc.errors import NotFound, PermissionDenied
from services.runtime.tokens import ALL_ZONES, Principal

SUBMITTERS = frozenset({"intake_officer", "zone_chief", "deputy_chief", "county_leadership"})
# The reporter has no account: a portal (or an officer at the front desk) presents the receipt.
RECEIPT_PRESENTERS = frozenset({"reporter_portal", "intake_officer"})
# Officers who write to and read from the reporter channel of their zone's reports.
CHANNEL_OFFICERS = frozenset({"intake_officer", "case_officer", "zone_chief", "deputy_chief"})
ACCEPTANCE_DECIDERS = frozenset({"intake_officer", "zone_chief", "deputy_chief"})
REVEAL_REQUESTERS = frozenset({"case_officer"})
# 保管人: holds the vault's key policy, approves reveals, never reads identities itself.
CUSTODIANS = frozenset({"custodian"})


def authorize_submit(principal: Principal, *, county_id: str, zone_id: str) -> None:
    """Submitting a report needs an intake role scoped to the report's county and zone."""
    require(principal, roles=SUBMITTERS, county_id=county_id, zone_id=zone_id)


def authorize_submit_county(principal: Principal, *, county_id: str) -> None:
    """Before routing reads the registry: the caller must be an intake role of the county."""
    require(principal, roles=SUBMITTERS, county_id=county_id)


def authorize_back_registration(
    principal: Principal,
    registered_at: datetime,
    *,
    received_at: datetime | None,
    now: datetime,
    window_days: int,
) -> None:
    """Back-entry (补录) of a registration time needs `back_entry` and a moment that can be true."""
    check_back_entry(
        principal,
        registered_at,
        now=now,
        window_days=window_days,
        # Without a received time the registration moment stands for both.
        not_before=received_at or registered_at,
        not_before_what="received_at",
        field="registered_at",
    )


def authorize_back_dated_decision(
    principal: Principal,
    effective_at: datetime,
    *,
    not_before: datetime,
    not_before_what: str,
    now: datetime,
    window_days: int,
) -> None:
    """Back-entry (补录) of an officer's decision needs `back_entry` and a true moment."""
    check_back_entry(
        principal,
        effective_at,
        now=now,
        window_days=window_days,
        not_before=not_before,
        not_before_what=not_before_what,
        field="effective_at",
    )


def authorize_receipt(principal: Principal, *, county_id: str) -> None:
    """Presenting a receipt needs the portal or front-desk role of that county."""
    require(principal, roles=RECEIPT_PRESENTERS, county_id=county_id)


def _visible(principal: Principal, *, county_id: str, report_id: str) -> None:
    # Outside the caller's county a report does not even exist.
    if not principal.can_see_county(county_id):
        raise NotFound("report", report_id)


def authorize_channel_officer(
    principal: Principal, *, county_id: str, zone_id: str, report_id: str
) -> None:
    """Officers of the report's zone use its reporter channel."""
    if principal.roles.isdisjoint(CHANNEL_OFFICERS):
        raise PermissionDenied(f"{principal.subject} may not use the reporter channel")
    _visible(principal, county_id=county_id, report_id=report_id)
    require(principal, roles=CHANNEL_OFFICERS, county_id=county_id, zone_id=zone_id)


def authorize_acceptance(
    principal: Principal, *, county_id: str, zone_id: str, report_id: str
) -> None:
    """Acceptance is decided by intake staff or the zone's chiefs."""
    if principal.roles.isdisjoint(ACCEPTANCE_DECIDERS):
        raise PermissionDenied(f"{principal.subject} may not decide acceptance")
    _visible(principal, county_id=county_id, report_id=report_id)
    require(principal, roles=ACCEPTANCE_DECIDERS, county_id=county_id, zone_id=zone_id)


# The result after closure is told by the same people who decide acceptance.
RESULT_TELLERS = ACCEPTANCE_DECIDERS


def authorize_result_feedback(
    principal: Principal, *, county_id: str, zone_id: str, report_id: str
) -> None:
    """The result is told by intake staff or the zone's chiefs."""
    if principal.roles.isdisjoint(RESULT_TELLERS):
        raise PermissionDenied(f"{principal.subject} may not record result feedback")
    _visible(principal, county_id=county_id, report_id=report_id)
    require(principal, roles=RESULT_TELLERS, county_id=county_id, zone_id=zone_id)


def authorize_reveal_request(
    principal: Principal, *, county_id: str, zone_id: str, report_id: str
) -> None:
    """Only a case officer of the report's zone may ask for the identity."""
    if principal.roles.isdisjoint(REVEAL_REQUESTERS):
        raise PermissionDenied(f"{principal.subject} may not request an identity reveal")
    _visible(principal, county_id=county_id, report_id=report_id)
    require(principal, roles=REVEAL_REQUESTERS, county_id=county_id, zone_id=zone_id)


def authorize_reveal_decision(principal: Principal, *, county_id: str, requested_by: str) -> None:
    """A custodian of the county, never the requester, decides."""
    if principal.roles.isdisjoint(CUSTODIANS):
        raise PermissionDenied(f"{principal.subject} is not a custodian")
    require(principal, roles=CUSTODIANS, county_id=county_id)
    if principal.subject == requested_by:
        raise PermissionDenied("a custodian may not decide their own reveal request")
    if not principal.roles.isdisjoint(REVEAL_REQUESTERS):
        # Separation of duties: whoever can read identities must not approve reads.
        raise PermissionDenied("a custodian may not also hold the case officer role")


def authorize_reveal_read(
    principal: Principal, *, county_id: str, zone_id: str, requested_by: str
) -> None:
    """Only the requesting case officer, still scoped to the zone, reads."""
    require(principal, roles=REVEAL_REQUESTERS, county_id=county_id, zone_id=zone_id)
    if principal.subject != requested_by:
        raise PermissionDenied("only the officer who filed the request may read the identity")


# Officers who judge near-duplicates: the same people who decide acceptance.
DUPLICATE_DECIDERS = ACCEPTANCE_DECIDERS | {"county_leadership"}


def duplicate_zones(principal: Principal, *, county_id: str) -> frozenset[str] | None:
    """The zones whose near-duplicates the caller sees (None = every zone of the county)."""
    require(principal, roles=DUPLICATE_DECIDERS, county_id=county_id)
    if ALL_ZONES in principal.zone_ids:
        return None
    return frozenset(principal.zone_ids)


def authorize_duplicate_decision(principal: Principal, *, county_id: str, zone_id: str) -> None:
    """A near-duplicate is decided by intake staff or chiefs of the report's zone."""
    require(principal, roles=DUPLICATE_DECIDERS, county_id=county_id, zone_id=zone_id)
