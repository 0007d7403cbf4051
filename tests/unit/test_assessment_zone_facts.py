"""Assessment never ranks a zone that is not one: empty or county-wide zone ids (issue 13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.assessment.domain.facts import increments_of
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.mappers import training_recorded
from services.contracts.staffing import TrainingRecorded


def _training(zone_id: str) -> TrainingRecorded:
    return TrainingRecorded(
        county_id="c-demo",
        zone_id=zone_id,
        record_id="t-1",
        person_id="chief-1",
        course="审查调查实务",
        training_type="case_study",
        hours=2,
        on_date=date(2026, 3, 5),
        recorded_by="lead",
        recorded_at=datetime(2026, 3, 5, 9, tzinfo=UTC),
    )


@pytest.mark.parametrize("zone_id", ["", "*"])
def test_training_without_a_zone_counts_for_the_person_only(zone_id: str) -> None:
    facts = training_recorded(_training(zone_id), datetime(2026, 3, 5, tzinfo=UTC))
    rows = [row for fact in facts for row in increments_of(fact, AssessmentCalendar())]
    assert rows, "the person's hours still count"
    assert {row.level for row in rows} == {Level.PERSON}
    assert {row.subject_id for row in rows} == {"chief-1"}


def test_training_in_a_zone_counts_for_the_zone_too() -> None:
    facts = training_recorded(_training("z-1"), datetime(2026, 3, 5, tzinfo=UTC))
    rows = [row for fact in facts for row in increments_of(fact, AssessmentCalendar())]
    assert {(row.level, row.subject_id) for row in rows} == {
        (Level.ZONE, "z-1"),
        (Level.PERSON, "chief-1"),
    }
