"""A group's run of reports: the rows built as plain values match the table models'."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlmodel import SQLModel

from services.intake.domain.channels import Attachment, ChannelDetails
from services.intake.domain.duplicates import Similar
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import ReporterIdentity, Subject, Submission
from services.intake.store.reports import Draft, ReportRegistry, _clue_values, _table_row
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import (
    AttachmentRow,
    ReportRow,
    SealedChannelDetailRow,
    SealedIdentityRow,
)
from services.intake.store.vault import Vault
from services.runtime.bulk import _Compiled
from services.runtime.db import Database

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUBJECT = Subject("Li", "secretary", "Hexi committee", "t1", "Dongcun", CadreLevel.VILLAGE)
SUBMISSION = Submission(
    idempotency_key="k1",
    county_id="c1",
    zone_id="z1",
    township_id="t1",
    channel=Channel.LETTER,
    subject=SUBJECT,
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


def _registry() -> ReportRegistry:
    # Drafting seals, hashes and rules; it never touches the database.
    return ReportRegistry(cast(Database, None), Vault(bytes(32)), load_rule_book())


WITH_PARTS = replace(
    SUBMISSION,
    channel=Channel.LETTER,
    reporter=ReporterIdentity("Wang Fang", "110101199001011234", "13800000000", "Xicun 3"),
    channel_details=ChannelDetails("letter", {"postmark": "Hexi"}),
    attachments=(
        Attachment("a" * 64, 120, "image/jpeg"),
        Attachment("b" * 64, 9, "application/pdf"),
    ),
)


def _model_of_draft(draft: Draft) -> ReportRow:
    """The ReportRow the drafting built before it kept plain values (same explicit fields)."""
    submission, values = draft.submission, draft.report
    subject = submission.subject
    assert subject is not None and submission.channel is not None
    rules = load_rule_book().rules_at(draft.received_at)
    row = ReportRow(
        report_id=draft.report_id,
        clue_id=draft.clue_id,
        county_id=submission.county_id,
        zone_id=submission.zone_id,
        township_id=submission.township_id,
        idempotency_key=submission.idempotency_key,
        request_fingerprint=draft.request_fingerprint,
        channel=submission.channel.value,
        subject_name=subject.name,
        subject_post=subject.post,
        subject_unit=subject.unit,
        subject_township_id=subject.township_id,
        subject_village=subject.village,
        subject_cadre_level=subject.cadre_level.value,
        allegation_categories=json.dumps(list(submission.allegation_categories)),
        campaign_id=submission.campaign_id,
        real_name=submission.reporter is not None,
        # Sealed under a fresh data key and nonce every time: taken from the draft.
        content_kek_id=values["content_kek_id"],
        content_wrapped_key=values["content_wrapped_key"],
        content_nonce=values["content_nonce"],
        content_ciphertext=values["content_ciphertext"],
        receipt_hash=values["receipt_hash"],
        submitted_by=draft.actor,
        received_at=draft.received_at,
        registered_at=draft.registered_at,
        taxonomy_version=draft.taxonomy_version,
        rules_version=rules.version,
        forward_due_at=values["forward_due_at"],
        feedback_due_at=values["feedback_due_at"],
    )
    row.duplicate_fingerprint = None if draft.forward_to else draft.profile.fingerprint
    return row


@pytest.mark.parametrize(
    "submission",
    [
        SUBMISSION,
        WITH_PARTS,
        replace(SUBMISSION, registered_at=AT, received_at=AT - timedelta(days=1)),
        replace(SUBMISSION, subject=replace(SUBJECT, cadre_level=CadreLevel.COUNTY_DIVISION)),
    ],
)
def test_a_drafts_report_and_sealed_parts_are_the_table_models_column_values(
    submission: Submission,
) -> None:
    draft = _registry()._draft(submission, "f" * 64, actor="officer")
    assert ("report", draft.report) == _table_row(_model_of_draft(draft))
    # The one-by-one path's model carries the same values.
    assert ("report", draft.report) == _table_row(draft.report_row())
    real_name = submission.reporter is not None
    assert draft.report["real_name"] is real_name
    assert (draft.report["feedback_due_at"] is not None) is real_name
    assert draft.report["forward_due_at"] is not None
    models = draft.part_rows()
    assert [_table_row(model) for model in models] == draft.parts
    kinds = [type(model) for model in models]
    assert kinds == (
        [SealedIdentityRow, SealedChannelDetailRow, AttachmentRow, AttachmentRow]
        if submission is WITH_PARTS
        else []
    )
    if submission is WITH_PARTS:
        identity = cast(dict[str, Any], draft.parts[0][1])
        assert set(identity) == {"report_id", "kek_id", "wrapped_key", "nonce", "ciphertext"}
        assert identity["report_id"] == draft.report_id
        # Sealed: the reporter's name is nowhere in the stored values.
        assert b"Wang Fang" not in identity["ciphertext"]
        assert cast(dict[str, Any], draft.parts[3][1]) == {
            "report_id": draft.report_id,
            "position": 1,
            "information_id": None,
            "sha256": "b" * 64,
            "size_bytes": 9,
            "media_type": "application/pdf",
        }


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_each_table_of_a_run_compiles_to_one_insert_binding_what_its_rows_name(
    dialect: Dialect,
) -> None:
    # BulkInsert refuses a table whose INSERT would bind a column the rows leave out (a
    # Python-side default): the run would then fall back to one by one, silently slower.
    draft = _registry()._draft(WITH_PARTS, "f" * 64, actor="officer")
    similar = [Similar("clue-9", "rpt-9", "near name")]
    rows, _ = _registry()._opened(draft, similar)
    by_table: dict[str, list[dict[str, object]]] = {}
    for name, values in rows:
        by_table.setdefault(name, []).append(values)
    assert set(by_table) == {
        "report",
        "report_match_key",
        "reporter_identity",
        "report_channel_detail",
        "report_attachment",
        "intake_clue",
        "duplicate_candidate",
        "outbox_message",
    }
    for name, values_list in by_table.items():
        assert len({tuple(values) for values in values_list}) == 1, name
        table = SQLModel.metadata.tables[name]
        compiled = _Compiled(insert(table), list(values_list[0]), dialect)
        assert compiled.sql.startswith(f"INSERT INTO {name} ")
