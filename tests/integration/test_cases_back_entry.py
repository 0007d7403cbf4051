"""Back-entry (补录) in cases: steps dated when they took effect, deadlines judged on that time."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlmodel import col, select
from xiezuo.cases.v1 import cases_pb2

from services.cases.handlers.teams import on_team_assigned
from services.cases.store.deadline_scan import DeadlineScanner
from services.cases.store.tables import CaseStepRow, DeadlineNoticeRow, DeadlineRow
from services.contracts.staffing import TeamAssigned, TeamMember
from services.runtime.audit import AuditEntry
from services.runtime.backentry import BACK_ENTRY_GRACE
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.errors import field_violations
from services.runtime.messaging_tables import OutboxMessage
from tests.integration import test_cases_api
from tests.integration.helpers import register_case_clue
from tests.integration.test_cases_api import Api

# The CaseService over real gRPC (SQLite and PostgreSQL), as the API tests build it.
api = test_cases_api.api

BACK = "back_entry"
# The paper ledger: a clue registered in spring, disposed of within its one-month limit.
REGISTERED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=200)


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _register(db: Database, clue_id: str, at: datetime, *, back_entered: bool) -> None:
    await register_case_clue(db, clue_id, at=at, back_entered=back_entered)


async def _act(api: Api, who: Any, case_id: str, action: str, at: datetime, **fields: Any) -> Any:
    request = cases_pb2.ActOnCaseRequest(
        idempotency_key=uuid.uuid4().hex,
        case_id=case_id,
        action=action,
        effective_at=_stamp(at),
        **fields,
    )
    return await api.stub.ActOnCase(request, metadata=who)


async def _deadlines(db: Database) -> list[DeadlineRow]:
    async with db.session() as session:
        query = select(DeadlineRow).order_by(col(DeadlineRow.deadline_id))
        return list((await session.exec(query)).all())


async def _outbox(db: Database, event_type: str) -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.event_type == event_type)
        return list((await session.exec(query)).all())


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_a_back_entered_disposal_is_dated_on_paper_and_meets_its_limit(api: Api) -> None:
    await _register(api.db, "clue-1", REGISTERED, back_entered=True)
    # Past due on the wall clock, but the scanner leaves it to the clerk for the grace period.
    assert (await DeadlineScanner(api.db).scan(now=datetime.now(UTC))).breached == []
    deputy = api.as_("deputy", "deputy_chief", BACK)
    chief = api.as_("chief", "zone_chief", BACK)
    proposed_at = REGISTERED + timedelta(days=6)
    await _act(api, deputy, "clue-1", "propose_disposal", proposed_at, choice="close")
    reply = await _act(api, chief, "clue-1", "approve_disposal", proposed_at + timedelta(days=1))
    assert reply.case.stage == "closed"
    async with api.db.session() as session:
        steps = (await session.exec(select(CaseStepRow).order_by(col(CaseStepRow.id)))).all()
        audits = (
            await session.exec(
                select(AuditEntry).where(col(AuditEntry.action) == "case.approve_disposal")
            )
        ).all()
    assert [_utc(step.at) for step in steps] == [proposed_at, proposed_at + timedelta(days=1)]
    assert all("recorded_at" in json.loads(step.detail) for step in steps)
    # The audit log keeps the real time of entry and names the paper moment.
    (entry,) = audits
    assert _utc(entry.at) > datetime.now(UTC) - timedelta(minutes=5)
    assert json.loads(entry.detail)["effective_at"] == (proposed_at + timedelta(days=1)).isoformat()
    (deadline,) = await _deadlines(api.db)
    assert (deadline.status, _utc(deadline.ended_at or REGISTERED)) == (
        "met",
        proposed_at + timedelta(days=1),
    )
    closed = await _outbox(api.db, "xiezuo.cases.case_closed.v1")
    # Consumers learn it was entered after the fact (intake gives its own deadlines time).
    assert [json.loads(m.payload)["detail"].get("back_entered") for m in closed] == [True]
    assert [json.loads(m.payload)["occurred_at"][:10] for m in closed] == [
        (proposed_at + timedelta(days=1)).date().isoformat()
    ]
    # Nothing is left for the scanner, even after the grace period.
    later = datetime.now(UTC) + BACK_ENTRY_GRACE + timedelta(hours=1)
    assert (await DeadlineScanner(api.db).scan(now=later)).breached == []


async def test_a_back_entered_step_after_the_limit_is_a_breach_counted_when_it_fell_due(
    api: Api,
) -> None:
    await _register(api.db, "clue-2", REGISTERED, back_entered=True)
    deputy = api.as_("deputy", "deputy_chief", BACK)
    await _act(
        api, deputy, "clue-2", "propose_disposal", REGISTERED + timedelta(days=45), choice="close"
    )
    chief = api.as_("chief", "zone_chief", BACK)
    await _act(api, chief, "clue-2", "approve_disposal", REGISTERED + timedelta(days=46))
    (deadline,) = await _deadlines(api.db)
    assert deadline.status == "breached"
    breaches = await _outbox(api.db, "xiezuo.cases.deadline_breached.v1")
    assert [json.loads(m.payload)["deadline_id"] for m in breaches] == [deadline.deadline_id]
    assert (
        json.loads(breaches[0].payload)["due_at"][:10] == _utc(deadline.due_at).date().isoformat()
    )
    later = datetime.now(UTC) + BACK_ENTRY_GRACE + timedelta(hours=1)
    assert (await DeadlineScanner(api.db).scan(now=later)).breached == []
    async with api.db.session() as session:
        notices = (await session.exec(select(DeadlineNoticeRow))).all()
    assert [n.notice for n in notices] == ["breached"]


async def test_an_unfinished_back_entered_clue_breaches_after_the_grace(api: Api) -> None:
    await _register(api.db, "clue-3", REGISTERED, back_entered=True)
    scanner = DeadlineScanner(api.db)
    assert (await scanner.scan(now=datetime.now(UTC))).breached == []
    late = await scanner.scan(now=datetime.now(UTC) + BACK_ENTRY_GRACE + timedelta(minutes=1))
    assert late.breached == ["clue-3:disposal:1"]


async def test_back_dating_needs_the_grant_and_a_true_moment(api: Api) -> None:
    await _register(api.db, "clue-4", REGISTERED, back_entered=True)
    plain = api.as_("deputy", "deputy_chief")
    granted = api.as_("deputy", "deputy_chief", BACK)
    cases: list[tuple[Any, datetime, grpc.StatusCode]] = [
        (plain, REGISTERED + timedelta(days=1), grpc.StatusCode.PERMISSION_DENIED),
        (granted, REGISTERED - timedelta(days=1), grpc.StatusCode.INVALID_ARGUMENT),
        (granted, datetime.now(UTC) + timedelta(days=1), grpc.StatusCode.INVALID_ARGUMENT),
        (granted, datetime.now(UTC) - timedelta(days=500), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for who, at, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _act(api, who, "clue-4", "propose_disposal", at, choice="close")
        assert refused.value.code() is code
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            assert [f for f, _ in field_violations(refused.value)] == ["effective_at"]
    async with api.db.session() as session:
        assert (await session.exec(select(CaseStepRow))).all() == []


async def test_a_team_drawn_for_a_back_entered_request_joins_the_paper_timeline(api: Api) -> None:
    await _register(api.db, "clue-5", REGISTERED, back_entered=True)
    deputy = api.as_("deputy", "deputy_chief", BACK)
    chief = api.as_("chief", "zone_chief", BACK)
    at = REGISTERED + timedelta(days=3)
    await _act(api, deputy, "clue-5", "propose_disposal", at, choice="preliminary_verification")
    await _act(api, chief, "clue-5", "approve_disposal", at)
    (request,) = [
        json.loads(m.payload) for m in await _outbox(api.db, "xiezuo.cases.team_requested.v1")
    ]
    event = TeamAssigned(
        county_id="c1",
        zone_id="z1",
        request_id=request["request_id"],
        case_id="clue-5",
        stage=request["stage"],
        draw_id="draw-1",
        members=[TeamMember(person_id=p, home_township_id="t9") for p in ("p1", "p2")],
        assigned_at=datetime.now(UTC),
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type="t",
        source="xiezuo/staffing",
        time=datetime.now(UTC),
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )
    async with api.db.transaction() as session:
        await on_team_assigned(session, event, envelope)
    async with api.db.session() as session:
        last = (
            await session.exec(select(CaseStepRow).order_by(col(CaseStepRow.id).desc()))
        ).first()
    assert last is not None and last.action == "team_assigned"
    assert _utc(last.at) == at
    # The back-entry goes on in order after the team's step.
    reply = await _act(api, deputy, "clue-5", "approve_plan", at + timedelta(days=2))
    assert reply.step.action == "approve_plan"


async def test_list_cases_at_risk_names_files_in_their_warning_period(api: Api) -> None:
    now = datetime.now(UTC)
    # One registered 28 days ago (warned 5 days before its one-month limit), one today.
    await _register(api.db, "clue-risk", now - timedelta(days=28), back_entered=False)
    await _register(api.db, "clue-fresh", now, back_entered=False)
    chief = api.as_("chief", "zone_chief")
    reply = await api.stub.ListCases(
        cases_pb2.ListCasesRequest(county_id="c1", at_risk_only=True), metadata=chief
    )
    assert [case.case_id for case in reply.cases] == ["clue-risk"]
    everything = await api.stub.ListCases(
        cases_pb2.ListCasesRequest(county_id="c1"), metadata=chief
    )
    assert sorted(case.case_id for case in everything.cases) == ["clue-fresh", "clue-risk"]
