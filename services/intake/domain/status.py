"""What a reporter may be told: a coarse status, never who handles the report or how."""

from __future__ import annotations

import enum


class ReportStatus(enum.StrEnum):
    """The status a reporter sees through the receipt."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not_accepted"
    FORWARDED = "forwarded"
    IN_PROGRESS = "in_progress"
    CONCLUDED = "concluded"


class AcceptanceOutcome(enum.StrEnum):
    """The acceptance decision (受理)."""

    ACCEPT = "accept"
    NOT_ACCEPT = "not_accept"
    FORWARD = "forward"


STATUS_AFTER = {
    AcceptanceOutcome.ACCEPT: ReportStatus.ACCEPTED,
    AcceptanceOutcome.NOT_ACCEPT: ReportStatus.NOT_ACCEPTED,
    AcceptanceOutcome.FORWARD: ReportStatus.FORWARDED,
}


def check_acceptance(
    *, outcome: AcceptanceOutcome, ground: str, reason: str, forward_to: str
) -> list[tuple[str, str]]:
    """Violations of the acceptance rules, as (field, what is wrong)."""
    problems: list[tuple[str, str]] = []
    if outcome is AcceptanceOutcome.NOT_ACCEPT:
        if not ground:
            problems.append(("rejection_ground", "is required when not accepting"))
        if not reason.strip():
            problems.append(("reason", "is required when not accepting"))
    if outcome is AcceptanceOutcome.FORWARD and not forward_to.strip():
        problems.append(("forward_to_body", "is required when forwarding"))
    return problems


def decidable(current: ReportStatus) -> bool:
    """Acceptance is decided once, while the report is only received."""
    return current is ReportStatus.RECEIVED
