"""Staff training (courses, lectures, case studies, drills, study visits) and attendance."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class TrainingType(enum.StrEnum):
    """The kind of training a record is for."""

    LECTURE = "lecture"
    CASE_STUDY = "case_study"
    DRILL = "drill"
    STUDY_VISIT = "study_visit"


class AttendanceStatus(enum.StrEnum):
    """Where a person was on a working day."""

    PRESENT = "present"
    ABSENT = "absent"
    ON_LEAVE = "on_leave"
    ON_ASSIGNMENT = "on_assignment"
    IN_TRAINING = "in_training"


# A training record is one day of a course: a multi-day course is recorded day by day, so
# hours and attendance line up by date.
MAX_HOURS_PER_RECORD = 24.0


@dataclass(frozen=True)
class TrainingEntry:
    """One day of training a person took."""

    person_id: str
    course: str
    training_type: TrainingType
    hours_tenths: int
    on_date: date


def training_problems(course: str, hours: float) -> list[tuple[str, str]]:
    """What is wrong with a training record's course and hours, as (field, problem)."""
    problems = []
    if not course.strip():
        problems.append(("course", "is required"))
    elif len(course) > 300:
        problems.append(("course", "is longer than 300 characters"))
    # Below a twentieth of an hour rounds to no tenths at all: nothing would be recorded.
    if not 0 < hours <= MAX_HOURS_PER_RECORD or round(hours * 10) < 1:
        problems.append(("hours", f"must be more than 0 and at most {MAX_HOURS_PER_RECORD:g}"))
    elif abs(hours * 10 - round(hours * 10)) > 1e-6:
        problems.append(("hours", "is recorded in tenths of an hour"))
    return problems


def tenths(hours: float) -> int:
    """Hours as whole tenths."""
    return round(hours * 10)
