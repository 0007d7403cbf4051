"""Attendance days: a day counts when the person was at work, and a correction replaces it."""

from __future__ import annotations

from datetime import datetime

# Statuses (staffing's AttendanceRecorded) in which the person was working that day.
WORKING_STATUSES = frozenset({"present", "on_assignment", "in_training"})


def attended(status: str) -> int:
    """1 for a working day, else 0."""
    return 1 if status in WORKING_STATUSES else 0


def supersedes(new: tuple[datetime, str], old: tuple[datetime, str]) -> bool:
    """Whether a record (recorded_at, event id) replaces the one in force: the later wins, and
    the event id breaks a tie so every replay picks the same one."""
    return new > old


def correction(old_status: str | None, new_status: str) -> int:
    """The change to a person's attendance-day count when `new_status` replaces `old_status`."""
    return attended(new_status) - (attended(old_status) if old_status is not None else 0)
