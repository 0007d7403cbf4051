"""Consumers read events tolerantly: fields a newer producer added are ignored, errors are not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.contracts.intake import ClueRegistered, ReportedSubject

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _payload() -> dict[str, object]:
    event = ClueRegistered(
        county_id="c1",
        zone_id="z1",
        clue_id="clue-1",
        report_id="r-1",
        township_id="t1",
        channel="letter",
        allegation_categories=["embezzlement"],
        subject=ReportedSubject(
            name="Li", post="secretary", unit="Hexi", township_id="t1", cadre_level="village"
        ),
        real_name=False,
        received_at=AT,
        registered_at=AT,
    )
    payload: dict[str, object] = json.loads(event.model_dump_json())
    return payload


def test_fields_a_newer_producer_added_are_ignored_at_any_depth() -> None:
    payload = _payload()
    payload["added_in_a_later_release"] = {"anything": 1}
    subject = payload["subject"]
    assert isinstance(subject, dict)
    subject["added_too"] = "x"
    event = ClueRegistered.read(json.dumps(payload))
    assert event.clue_id == "clue-1" and event.subject.name == "Li"


def test_a_payload_that_is_wrong_otherwise_still_fails() -> None:
    payload = _payload()
    payload["added_in_a_later_release"] = 1
    del payload["clue_id"]
    with pytest.raises(ValidationError):
        ClueRegistered.read(json.dumps(payload))
    with pytest.raises(ValidationError):
        ClueRegistered.read(b"not json")


def test_producers_stay_strict() -> None:
    payload = _payload()
    payload["reporter_name"] = "must never be published"
    with pytest.raises(ValidationError):
        ClueRegistered(**payload)
