"""A group's run of reports: the clue rows built as plain values match the table models'."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission
from services.intake.store.reports import ReportRegistry, _clue_values, _table_row
from services.intake.store.tables import ReportRow

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUBMISSION = Submission(
    idempotency_key="k1",
    county_id="c1",
    zone_id="z1",
    township_id="t1",
    channel=Channel.LETTER,
    subject=Subject("Li", "secretary", "Hexi committee", "t1", "Dongcun", CadreLevel.VILLAGE),
    allegation_categories=("embezzlement", "nepotism"),
    content="Subsidies paid to relatives.",
    reporter=None,
    campaign_id="camp-1",
)


def _report(**changes: Any) -> ReportRow:
    values: dict[str, Any] = {
        "report_id": "rpt-1",
        "clue_id": "clue-1",
        "county_id": "c1",
        "zone_id": "z1",
        "township_id": "t1",
        "idempotency_key": "k1",
        "request_fingerprint": "f" * 64,
        "channel": "letter",
        "subject_name": "Li",
        "subject_post": "secretary",
        "subject_unit": "Hexi committee",
        "subject_township_id": "t1",
        "subject_village": "Dongcun",
        "subject_cadre_level": "village",
        "allegation_categories": '["embezzlement", "nepotism"]',
        "campaign_id": "camp-1",
        "real_name": False,
        "content_kek_id": "k",
        "content_wrapped_key": b"w",
        "content_nonce": b"n",
        "content_ciphertext": b"c",
        "receipt_hash": "h",
        "submitted_by": "officer",
        "received_at": AT - timedelta(hours=1),
        "registered_at": AT,
    }
    return ReportRow(**(values | changes))


@pytest.mark.parametrize(
    "submission", [SUBMISSION, replace(SUBMISSION, registered_at=AT, campaign_id=None)]
)
def test_plain_clue_values_are_the_table_models_column_values(submission: Submission) -> None:
    row = _report(campaign_id=submission.campaign_id)
    ledger, outbox = ReportRegistry._clue_rows(row, submission, "tax-1", 7, at=AT)
    ledger_values, outbox_values = _clue_values(row, submission, "tax-1", 7, at=AT)
    assert ("intake_clue", ledger_values) == _table_row(ledger)
    name, expected = _table_row(outbox)
    assert name == "outbox_message"
    # Fresh on every build: an event's id and the moment its row was written.
    unique = {"event_id", "recorded_at"}
    assert set(outbox_values) == set(expected)
    assert {k: v for k, v in outbox_values.items() if k not in unique} == {
        k: v for k, v in expected.items() if k not in unique
    }
    assert isinstance(outbox_values["event_id"], str) and outbox_values["event_id"]
    assert isinstance(outbox_values["recorded_at"], datetime)
