"""Back-entry (补录): recording a step that happened on paper earlier, at the time it happened.

A county moving onto the platform, or an office that worked offline for a day, enters its
ledger after the fact. Such a call names the moment the step took effect; the record (and the
events it publishes, and the quarters assessment counts it in) carries that moment, while the
audit log keeps the real time of entry beside it. Only principals granted `back_entry` may do
it, never into the future, never out of order, and never further back than the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.runtime.grpc.errors import FieldViolation, InvalidArgument, PermissionDenied
from services.runtime.tokens import Principal

BACK_ENTRY_ROLE = "back_entry"
# A deadline already past due when its record is entered waits this long before a scan judges
# it, so the office can enter the step that met it first (scans run on the real clock).
BACK_ENTRY_GRACE = timedelta(hours=24)
# Clocks of callers and servers differ a little; a moment this far ahead is still "now".
CLOCK_SKEW = timedelta(minutes=2)


def check_back_entry(
    principal: Principal,
    effective_at: datetime,
    *,
    now: datetime,
    window_days: int,
    not_before: datetime | None = None,
    not_before_what: str = "",
    field: str = "effective_at",
) -> None:
    """Refuse a back-dated moment the caller may not enter, or that cannot be true."""
    if not principal.has_role(BACK_ENTRY_ROLE):
        raise PermissionDenied(
            f"{principal.subject} may not back-date ({field} needs the {BACK_ENTRY_ROLE} role)"
        )
    problem = ""
    if effective_at > now + CLOCK_SKEW:
        problem = "must not be in the future"
    elif effective_at < now - timedelta(days=window_days):
        problem = f"must be within the back-entry window of {window_days} days"
    elif not_before is not None and effective_at < not_before:
        problem = f"must not be before {not_before_what} ({not_before.isoformat()})"
    if problem:
        raise InvalidArgument([FieldViolation(field, problem)])
