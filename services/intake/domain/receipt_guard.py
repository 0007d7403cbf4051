"""When receipt guessing is locked out: failures per prefix and per caller within a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.intake.domain.rules import ReceiptGuard


@dataclass(frozen=True)
class GuardScope:
    """One thing failures are counted against: a receipt prefix or a caller."""

    kind: str  # "prefix" or "caller"
    key: str

    @property
    def name(self) -> str:
        """Stable storage key."""
        return f"{self.kind}:{self.key}"


def scopes_of(*, county_id: str, prefix: str, caller: str) -> list[GuardScope]:
    """The scopes a look-up counts against, per county."""
    return [
        GuardScope("prefix", f"{county_id}:{prefix}"),
        GuardScope("caller", f"{county_id}:{caller}"),
    ]


def limit_for(scope: GuardScope, guard: ReceiptGuard) -> int:
    """How many failures the scope tolerates within the window."""
    return (
        guard.max_failures_per_prefix if scope.kind == "prefix" else guard.max_failures_per_caller
    )


def window_start(now: datetime, guard: ReceiptGuard) -> datetime:
    """Failures before this moment no longer count."""
    return now - timedelta(minutes=guard.window_minutes)


def lockout_until(now: datetime, guard: ReceiptGuard) -> datetime:
    """End of a lockout that starts now."""
    return now + timedelta(minutes=guard.lockout_minutes)
