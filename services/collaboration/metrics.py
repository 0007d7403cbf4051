"""Letters per county pair and kind, and the time from approval to answer, on /metrics."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.runtime.db import as_utc

# Working days stretch over weeks: buckets from an hour to a month and a half.
APPROVAL_TO_ANSWER_BUCKETS = tuple(
    hours * 3600.0 for hours in (1, 4, 8, 24, 48, 72, 120, 168, 240, 336, 504, 720, 1080)
)


class LetterMetrics:
    """Counted by the county that took the step; labels are member counties and kinds only."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.steps = Counter(
            "xiezuo_collaboration_letter_steps",
            "Letter steps: sent, received, accepted, declined, answered (per side)",
            ["from_county", "to_county", "kind", "step"],
            registry=self.registry,
        )
        self.approval_to_answer = Histogram(
            "xiezuo_collaboration_approval_to_answer_seconds",
            "From the asking county's approval to the answer it received",
            ["from_county", "to_county", "kind"],
            buckets=APPROVAL_TO_ANSWER_BUCKETS,
            registry=self.registry,
        )

    def step(self, *, from_county: str, to_county: str, kind: str, step: str) -> None:
        """One step of a letter asked by `from_county` of `to_county`."""
        self.steps.labels(from_county, to_county, kind, step).inc()

    def answered(
        self,
        *,
        from_county: str,
        to_county: str,
        kind: str,
        approved_at: datetime | None,
        answered_at: datetime,
    ) -> None:
        """The asking county received the answer."""
        self.step(from_county=from_county, to_county=to_county, kind=kind, step="answer_received")
        if approved_at is not None:
            seconds = (as_utc(answered_at) - as_utc(approved_at)).total_seconds()
            self.approval_to_answer.labels(from_county, to_county, kind).observe(max(0.0, seconds))
