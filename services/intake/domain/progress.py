"""What a reporter may be told of the case work on their clue: in progress, then concluded."""

from __future__ import annotations

from services.intake.domain.status import ReportStatus

# Case workflow events (by type name) and what they mean to the reporter. Nothing finer is
# told: not the way of disposal, the stage, the team or the decision.
PROGRESS_OF_EVENT = {
    "xiezuo.cases.clue_disposed.v1": ReportStatus.IN_PROGRESS,
    "xiezuo.cases.case_filed.v1": ReportStatus.IN_PROGRESS,
    "xiezuo.cases.stage_changed.v1": ReportStatus.IN_PROGRESS,
    "xiezuo.cases.extension_granted.v1": ReportStatus.IN_PROGRESS,
    "xiezuo.cases.case_decided.v1": ReportStatus.CONCLUDED,
    "xiezuo.cases.case_transferred.v1": ReportStatus.CONCLUDED,
    "xiezuo.cases.case_closed.v1": ReportStatus.CONCLUDED,
}
# Statuses case progress may move on; a report refused or forwarded stays as it was told.
_MOVABLE = {
    ReportStatus.RECEIVED: 0,
    ReportStatus.ACCEPTED: 1,
    ReportStatus.IN_PROGRESS: 2,
    ReportStatus.CONCLUDED: 3,
}
TOLD = {
    ReportStatus.IN_PROGRESS: "Your report is being handled.",
    ReportStatus.CONCLUDED: "The handling of your report has concluded.",
}


def progressed(current: ReportStatus, progress: ReportStatus) -> ReportStatus | None:
    """The status after case progress, or None when nothing changes (never goes back)."""
    if current not in _MOVABLE or progress not in _MOVABLE:
        return None
    return progress if _MOVABLE[progress] > _MOVABLE[current] else None


def later(a: str, b: ReportStatus) -> ReportStatus:
    """The further along of a clue's recorded progress ("" = none) and new progress."""
    if not a:
        return b
    current = ReportStatus(a)
    return b if _MOVABLE.get(b, 0) > _MOVABLE.get(current, 0) else current
