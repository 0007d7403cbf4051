"""Cases puts another county's verified answer to an assistance letter in the case's history."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from services.cases.handlers.assistance import on_assistance_answered
from services.cases.store.tables import CaseStepRow
from services.contracts.collaboration import AssistanceAnswered
from services.runtime.audit import AuditEntry
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from tests.conftest import MakeDatabase
from tests.integration.helpers import register_case_clue

NOW = datetime.now(UTC) - timedelta(hours=1)


def _answer(case_id: str) -> AssistanceAnswered:
    return AssistanceAnswered(
        county_id="c1",
        zone_id="z1",
        case_id=case_id,
        letter_id="L-1",
        answered_by_county="county-b",
        kind="verify_fact",
        findings="经核实，王某2025年在该公司领取报酬3.6万元",
        attachments=1,
        answered_at=NOW,
    )


def _envelope() -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=AssistanceAnswered.event_type,
        source="xiezuo/collaboration",
        time=NOW,
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )


async def test_the_answer_is_a_step_in_the_case_history_and_its_audit(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await register_case_clue(db, "clue-9", at=NOW)
    async with db.transaction() as session:
        await on_assistance_answered(session, _answer("clue-9"), _envelope())
    async with db.session() as session:
        steps = (
            await session.exec(
                select(CaseStepRow).where(
                    col(CaseStepRow.case_id) == "clue-9",
                    col(CaseStepRow.action) == "assistance_answered",
                )
            )
        ).all()
        audited = (
            await session.exec(
                select(AuditEntry).where(
                    col(AuditEntry.record_id) == "clue-9",
                    col(AuditEntry.actor) == "county:county-b",
                )
            )
        ).all()
    (step,) = steps
    assert step.from_stage == step.to_stage and step.actor == "county:county-b"
    detail = json.loads(step.detail)
    assert detail["letter_id"] == "L-1" and detail["findings"].startswith("经核实")
    assert len(audited) == 1


async def test_an_answer_for_a_case_the_county_does_not_have_is_refused(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    with pytest.raises(PoisonEvent):
        async with db.transaction() as session:
            await on_assistance_answered(session, _answer("no-such-case"), _envelope())
