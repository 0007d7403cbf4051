"""Per-zone gauges of deadlines at risk, read from the deadline table on a timer."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge

from services.cases.store.deadline_watch import deadlines_at_risk
from services.runtime.db import Database

LABELS = ["service", "county", "zone", "kind"]


class DeadlineGauges:
    """`xiezuo_deadlines_approaching` and `xiezuo_deadlines_breached`, one series per zone."""

    def __init__(self, database: Database, registry: CollectorRegistry) -> None:
        self._db = database
        # Every replica reads the same table, so replicas report the same numbers (use max).
        self.approaching = Gauge(
            "xiezuo_deadlines_approaching",
            "Running deadlines inside their warning window (the rules' warn_days), not yet due.",
            LABELS,
            registry=registry,
        )
        self.breached = Gauge(
            "xiezuo_deadlines_breached",
            "Running deadlines past their due moment and not yet met, extended or closed.",
            LABELS,
            registry=registry,
        )
        self._shown: set[tuple[str, str, str]] = set()

    async def refresh(self, now: datetime | None = None) -> None:
        """Read the counts; a zone that had deadlines at risk and has none now shows 0."""
        counts = await deadlines_at_risk(self._db, now=now or datetime.now(UTC))
        current: set[tuple[str, str, str]] = set()
        for row in counts:
            key = (row.county_id, row.zone_id, row.kind)
            current.add(key)
            self.approaching.labels("cases", *key).set(row.approaching)
            self.breached.labels("cases", *key).set(row.breached)
        # Zeroed, not removed: a series that vanishes reads as "no data", not as "all clear".
        for key in self._shown - current:
            self.approaching.labels("cases", *key).set(0)
            self.breached.labels("cases", *key).set(0)
        self._shown |= current
