"""Identity reveal (身份披露): a case officer asks, a different custodian decides, one read."""

from __future__ import annotations

import enum


class RevealState(enum.StrEnum):
    """Where a reveal request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    # The one read an approval allows has been made.
    USED = "used"


class RevealRefused(Exception):
    """The reveal rules do not allow this step; the message says why (no identity in it)."""


def check_decision(*, state: RevealState, requested_by: str, custodian: str) -> None:
    """A pending request may be decided by anyone but its requester."""
    if custodian == requested_by:
        raise RevealRefused("the custodian must be a different person from the requester")
    if state is not RevealState.PENDING:
        raise RevealRefused(f"the request is already {state.value}")


def check_read(*, state: RevealState, requested_by: str, reader: str) -> None:
    """Only the requester reads, only once, only after approval."""
    if reader != requested_by:
        raise RevealRefused("only the officer who filed the request may read the identity")
    if state is RevealState.USED:
        raise RevealRefused("this approval has already been used; file a new request")
    if state is not RevealState.APPROVED:
        raise RevealRefused(f"the request is {state.value}, not approved")
