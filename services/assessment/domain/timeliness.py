"""Time limits met or missed: which clock a step stops or a breach concerns, and the verdict.

A clue's disposal or a case's investigation is "within the limit" when no breach of that
clock fell due at or before the moment it finished. The verdict is taken from the per-case
facts when read, so it does not depend on whether the step or the breach was consumed first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from services.assessment.domain.kpis import Kpi

DISPOSAL = "disposal"
INVESTIGATION = "investigation"

# Deadline kinds cases publishes → the clock assessment judges; a re-investigation after a
# send-back is still the investigation's limit.
_BREACH_CLOCKS = {
    "disposal": DISPOSAL,
    "investigation": INVESTIGATION,
    "reinvestigation": INVESTIGATION,
}

# clock → the KPIs a finish counts, each with whether it needs the limit met. Disposals
# themselves are counted per event by the mapper (clues_disposed); investigations finishing
# have no event of their own, so they are counted here.
_CLOCK_KPIS: dict[str, tuple[tuple[str, bool], ...]] = {
    DISPOSAL: ((Kpi.CLUES_DISPOSED_IN_TIME.value, True),),
    INVESTIGATION: (
        (Kpi.INVESTIGATIONS_FINISHED.value, False),
        (Kpi.INVESTIGATIONS_FINISHED_IN_TIME.value, True),
    ),
}


def clock_kpis(clock: str, in_time: bool) -> list[str]:
    """The KPIs one finished clock counts for its zone and township."""
    return [kpi for kpi, needs in _CLOCK_KPIS.get(clock, ()) if in_time or not needs]


def breach_clock(kind: str, record_type: str) -> str | None:
    """The clock a DeadlineBreached concerns, or None when it is not a judged limit."""
    if record_type != "case":
        return None
    return _BREACH_CLOCKS.get(kind)


def investigation_finished(from_stage: str, to_stage: str) -> bool:
    """A workflow step that leaves the investigation stage stops the investigation clock."""
    return from_stage == INVESTIGATION and to_stage != INVESTIGATION


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def within_limit(finished_at: datetime, breaches_due: Iterable[datetime]) -> bool:
    """Finished before any breach of the same clock fell due (so none was missed)."""
    finished = _utc(finished_at)
    return all(_utc(due) > finished for due in breaches_due)


def supersedes(candidate: tuple[datetime, str], stored: tuple[datetime, str]) -> bool:
    """The later finish (then the larger event id) is the one judged, in any arrival order."""
    return (_utc(candidate[0]), candidate[1]) > (_utc(stored[0]), stored[1])
