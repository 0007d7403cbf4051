"""Rectification items (整改): who must fix what by when, and when it counts as done."""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("supervision", "campaign", "inspection_tour")
# The rule-set time limit that gives an item its due date (inspection tours: 2 months).
TIME_LIMIT = "rectification"
OPEN, CLOSED = "open", "closed"


class RectificationRefused(Exception):
    """A step the item cannot take now (e.g. a report on a closed item)."""


@dataclass(frozen=True)
class ProgressReport:
    """What the owner unit reports, or what the zone's verification found."""

    kind: str  # progress, verified_done, verified_not_done
    note: str
    percent_done: int


def progress(status: str, note: str, percent_done: int) -> ProgressReport:
    """A progress report on an open item."""
    if status != OPEN:
        raise RectificationRefused("the item is closed")
    return ProgressReport("progress", note, percent_done)


def verification(status: str, done: bool, note: str) -> tuple[ProgressReport, str]:
    """The zone's verification and the status it leaves the item in."""
    if status != OPEN:
        raise RectificationRefused("the item is already closed")
    if done:
        return ProgressReport("verified_done", note, 100), CLOSED
    return ProgressReport("verified_not_done", note, 0), OPEN
