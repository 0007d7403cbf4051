"""Receipt guessing throttle: failures counted per source and per county within a window.

There is no per-receipt (or per-prefix) scope on purpose: a stranger's wrong guesses must never
lock out the holder of a real code. Guessing is bounded by the source's own failures and by the
county's failures from every source together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.intake.domain.rules import ReceiptGuard

SOURCE, COUNTY = "caller", "county"


@dataclass(frozen=True)
class GuardScope:
    """One thing failures are counted against: a source (portal + caller ref) or a county."""

    kind: str  # SOURCE or COUNTY
    key: str

    @property
    def name(self) -> str:
        """Stable storage key."""
        return f"{self.kind}:{self.key}"


def scopes_of(*, county_id: str, caller: str) -> list[GuardScope]:
    """The scopes a look-up counts against: its source first, then its county."""
    return [GuardScope(SOURCE, f"{county_id}:{caller}"), GuardScope(COUNTY, county_id)]


def limit_for(scope: GuardScope, guard: ReceiptGuard) -> int:
    """How many failures the scope tolerates within the window."""
    return guard.max_failures_per_caller if scope.kind == SOURCE else guard.max_failures_per_county


def window_start(now: datetime, guard: ReceiptGuard) -> datetime:
    """Failures before this moment no longer count."""
    return now - timedelta(minutes=guard.window_minutes)


def lockout_until(
    scope: GuardScope, failures: Sequence[datetime], now: datetime, guard: ReceiptGuard
) -> datetime | None:
    """Until when the scope is refused, given its failures in the window (None: not refused).

    A source that reached its limit waits the lockout period. A county is refused only while
    its window holds the limit's worth of failures: until the oldest of the latest `limit`
    failures leaves the window, so the back-off ends as soon as guessing stops.
    """
    limit = limit_for(scope, guard)
    if len(failures) < limit:
        return None
    if scope.kind == SOURCE:
        return now + timedelta(minutes=guard.lockout_minutes)
    oldest_counted = sorted(failures, reverse=True)[limit - 1]
    return oldest_counted + timedelta(minutes=guard.window_minutes)
