"""CaseService over real gRPC on SQLite and PostgreSQL: commands, reads, visibility, paging."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import func, select
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cases.api.servicer import CaseServicer
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.teams import on_recusal, on_team_assigned
from services.cases.store.case_reader import CaseReader
from services.cases.store.clues import ClueReader
from services.cases.store.deadline_scan import DeadlineScanner
from services.cases.store.links import ClueLinks
from services.cases.store.rectification import RectificationDesk
from services.cases.store.tables import CaseStepRow
from services.cases.store.workflow import Workflow
from services.contracts.staffing import RecusalRecorded, TeamAssigned, TeamMember
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.errors import field_violations
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from tests.conftest import MakeDatabase
from tests.integration.helpers import register_case_clue

ISSUER, AUDIENCE = "test", "xiezuo"
NOW = datetime.now(UTC)


@dataclass
class Api:
    stub: Any
    issuer: TokenIssuer
    db: Database

    def as_(self, subject: str, *roles: str, zones: tuple[str, ...] = ("z1",)) -> Any:
        """Call metadata for a principal of county c1."""
        token = self.issuer.issue(
            Principal(subject=subject, roles=frozenset(roles), county_id="c1", zone_ids=zones)
        )
        return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    database = await make_database("cases")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    servicer = CaseServicer(
        ClueReader(database),
        CaseReader(database),
        Workflow(database, {DEFAULT_RULES.version: DEFAULT_RULES}),
        back_entry_days=400,
        rectifications=RectificationDesk(database, lambda _: DEFAULT_RULES),
        links=ClueLinks(database, {DEFAULT_RULES.version: DEFAULT_RULES}),
    )
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.cases.v1.CaseService"],
        register=lambda server: cases_pb2_grpc.add_CaseServiceServicer_to_server(servicer, server),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Api(
            cases_pb2_grpc.CaseServiceStub(channel),
            TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE),
            database,
        )
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


def _envelope(source: str) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type="t",
        source=source,
        time=NOW,
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )


async def _register(db: Database, clue_id: str, *, zone: str = "z1", township: str = "t1") -> None:
    await register_case_clue(db, clue_id, at=NOW, zone=zone, township=township)


async def _team_requests(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.event_type == "xiezuo.cases.team_requested.v1"
                )
            )
        ).all()
    return [json.loads(row.payload) for row in rows]


async def _assign(db: Database, case_id: str, *people: str) -> None:
    request = [r for r in await _team_requests(db) if r["case_id"] == case_id][-1]
    event = TeamAssigned(
        county_id="c1",
        zone_id="z1",
        request_id=request["request_id"],
        case_id=case_id,
        stage=request["stage"],
        draw_id=f"draw-{uuid.uuid4().hex[:6]}",
        members=[TeamMember(person_id=p, home_township_id="t9") for p in people],
        assigned_at=NOW,
    )
    async with db.transaction() as session:
        await on_team_assigned(session, event, _envelope("xiezuo/staffing"))


async def _act(api: Api, who: Any, case_id: str, action: str, **fields: Any) -> Any:
    request = cases_pb2.ActOnCaseRequest(
        idempotency_key=fields.pop("key", uuid.uuid4().hex),
        case_id=case_id,
        action=action,
        **fields,
    )
    return await api.stub.ActOnCase(request, metadata=who)


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    code: grpc.StatusCode = failed.value.code()
    return code


async def _steps(db: Database) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(CaseStepRow))).one())


async def test_commands_act_once_and_reads_follow_the_visibility_policy(api: Api) -> None:
    await _register(api.db, "clue-1")
    deputy = api.as_("dep", "deputy_chief")
    chief = api.as_("chief", "zone_chief")
    officer_a, officer_c = api.as_("a", "case_officer"), api.as_("c", "case_officer")

    # Before a team exists, a case officer sees nothing and cannot act.
    get = cases_pb2.GetCaseRequest(case_id="clue-1")
    assert (
        await _code(api.stub.GetCase(get, metadata=officer_a)) is grpc.StatusCode.PERMISSION_DENIED
    )
    first = await _act(
        api, deputy, "clue-1", "propose_disposal", choice="preliminary_verification", key="k1"
    )
    again = await _act(
        api, deputy, "clue-1", "propose_disposal", choice="preliminary_verification", key="k1"
    )
    assert (first.replayed, again.replayed) == (False, True)
    assert again.step.step_id == first.step.step_id
    assert first.case.stage == "disposal_proposed" and first.case.pending.next_approver

    # Bad input is refused with field violations and stores nothing.
    before = await _steps(api.db)
    no_key = api.stub.ActOnCase(
        cases_pb2.ActOnCaseRequest(case_id="clue-1", action="approve_disposal"), metadata=chief
    )
    assert await _code(no_key) is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await _act(api, chief, "clue-1", "teleport")
    assert field_violations(unknown.value)[0][0] == "action"
    reused = _act(api, deputy, "clue-1", "propose_disposal", choice="close", key="k1")
    assert await _code(reused) is grpc.StatusCode.INVALID_ARGUMENT
    wrong_stage = _act(api, chief, "clue-1", "accept_file")
    assert await _code(wrong_stage) is grpc.StatusCode.FAILED_PRECONDITION
    not_approver = _act(api, deputy, "clue-1", "approve_disposal")
    assert await _code(not_approver) is grpc.StatusCode.PERMISSION_DENIED
    assert await _steps(api.db) == before
    elsewhere = api.as_("x", "county_leadership", zones=("*",))
    foreign = api.stub.GetCase(
        get, metadata=(("authorization", f"Bearer {_other_county(api, 'x')}"),)
    )
    assert await _code(foreign) is grpc.StatusCode.NOT_FOUND

    await _act(api, chief, "clue-1", "approve_disposal")
    clue = await api.stub.GetClue(cases_pb2.GetClueRequest(clue_id="clue-1"), metadata=chief)
    assert clue.clue.status == cases_pb2.CLUE_STATUS_PRELIMINARY_VERIFICATION
    assert clue.clue.stage == "verification"

    await _assign(api.db, "clue-1", "a", "b")
    seen = await api.stub.GetCase(get, metadata=officer_a)
    assert list(seen.case.working_team) == ["a", "b"]
    assert [s.event for s in seen.history] == [
        "DisposalProposed",
        "ClueDisposed",
        "TeamAssigned",
    ]
    assert [(d.kind, d.status) for d in seen.deadlines] == [
        ("disposal", "met"),
        ("verification", "open"),
    ]
    assert (
        await _code(api.stub.GetCase(get, metadata=officer_c)) is grpc.StatusCode.PERMISSION_DENIED
    )
    await api.stub.GetCase(get, metadata=elsewhere)
    other_zone_chief = api.as_("chief2", "zone_chief", zones=("z2",))
    assert (
        await _code(api.stub.GetCase(get, metadata=other_zone_chief))
        is grpc.StatusCode.PERMISSION_DENIED
    )

    # A team member acts; a recusal takes their access away at once.
    await _act(api, officer_a, "clue-1", "sign_report")
    listed = await api.stub.ListCases(
        cases_pb2.ListCasesRequest(county_id="c1"), metadata=officer_a
    )
    assert [c.case_id for c in listed.cases] == ["clue-1"]
    recusal = RecusalRecorded(
        county_id="c1",
        zone_id="z1",
        recusal_id="rc1",
        case_id="clue-1",
        person_id="a",
        ground="close_relative",
        raised_by_role="staff",
        granted=True,
        decided_by="head",
        decided_at=NOW,
    )
    async with api.db.transaction() as session:
        await on_recusal(session, recusal, {DEFAULT_RULES.version: DEFAULT_RULES})
    assert (
        await _code(api.stub.GetCase(get, metadata=officer_a)) is grpc.StatusCode.PERMISSION_DENIED
    )
    gone = await api.stub.ListCases(cases_pb2.ListCasesRequest(county_id="c1"), metadata=officer_a)
    assert list(gone.cases) == []
    clue_read = api.stub.GetClue(cases_pb2.GetClueRequest(clue_id="clue-1"), metadata=officer_a)
    assert await _code(clue_read) is grpc.StatusCode.PERMISSION_DENIED
    act_recused = _act(api, officer_a, "clue-1", "sign_report")
    assert await _code(act_recused) is grpc.StatusCode.PERMISSION_DENIED


def _other_county(api: Api, subject: str) -> str:
    return api.issuer.issue(
        Principal(
            subject=subject,
            roles=frozenset({"county_leadership"}),
            county_id="c2",
            zone_ids=("*",),
        )
    )


async def test_list_cases_filters_and_pages(api: Api) -> None:
    for index, (zone, township) in enumerate([("z1", "t1"), ("z1", "t2"), ("z2", "t3")]):
        await _register(api.db, f"case-{index}", zone=zone, township=township)
    leader = api.as_("lead", "county_leadership", zones=("*",))
    chief = api.as_("chief", "zone_chief")

    async def ids(who: Any, **filters: Any) -> list[str]:
        found: list[str] = []
        token = ""
        while True:
            page = await api.stub.ListCases(
                cases_pb2.ListCasesRequest(
                    county_id="c1", page_size=2, page_token=token, **filters
                ),
                metadata=who,
            )
            found += [c.case_id for c in page.cases]
            token = page.next_page_token
            if not token:
                return found

    assert await ids(leader) == ["case-0", "case-1", "case-2"]
    assert await ids(chief) == ["case-0", "case-1"]
    assert await ids(leader, zone_id="z2") == ["case-2"]
    assert await ids(leader, township_id="t2") == ["case-1"]
    assert await ids(leader, category="embezzlement") == ["case-0", "case-1", "case-2"]
    assert await ids(leader, category="embezzle") == []
    assert await ids(leader, stage="registered") == ["case-0", "case-1", "case-2"]
    assert await ids(leader, stage="verification") == []
    assert await ids(leader, overdue_only=True) == []
    await _act(api, chief, "case-1", "propose_disposal", choice="preliminary_verification")
    await _act(api, chief, "case-1", "approve_disposal")
    await _assign(api.db, "case-1", "p1", "p2")
    assert await ids(leader, assignee="p1") == ["case-1"]
    assert await ids(leader, stage="verification") == ["case-1"]
    # Past the disposal limit the untouched clues are overdue (the rows say so, no timer).
    await DeadlineScanner(api.db).scan(now=NOW + timedelta(days=40))
    overdue = await ids(leader, overdue_only=True)
    assert overdue == ["case-0", "case-2"]

    first = await api.stub.ListCases(
        cases_pb2.ListCasesRequest(county_id="c1", page_size=1), metadata=leader
    )
    replayed = api.stub.ListCases(
        cases_pb2.ListCasesRequest(
            county_id="c1", stage="hearing", page_token=first.next_page_token
        ),
        metadata=leader,
    )
    assert await _code(replayed) is grpc.StatusCode.INVALID_ARGUMENT
    foreign = api.stub.ListCases(cases_pb2.ListCasesRequest(county_id="c2"), metadata=leader)
    assert await _code(foreign) is grpc.StatusCode.PERMISSION_DENIED


async def test_rectification_items_open_progress_close_and_escalate(api: Api) -> None:
    chief = api.as_("chief", "zone_chief")
    officer = api.as_("o", "case_officer")
    open_request = cases_pb2.OpenRectificationRequest(
        idempotency_key="open-1",
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        source=cases_pb2.RECTIFICATION_SOURCE_INSPECTION_TOUR,
        source_ref="tour-2026-1",
        owner_unit="Hexi village committee",
        finding="Subsidy ledger not public",
    )
    opened = await api.stub.OpenRectification(open_request, metadata=chief)
    again = await api.stub.OpenRectification(open_request, metadata=chief)
    item = opened.item
    assert again.item.item_id == item.item_id and item.status == "open"
    assert item.due_at.ToDatetime(UTC) > item.opened_at.ToDatetime(UTC) + timedelta(days=55)
    denied = api.stub.OpenRectification(open_request, metadata=officer)
    assert await _code(denied) is grpc.StatusCode.PERMISSION_DENIED
    bad = api.stub.OpenRectification(
        cases_pb2.OpenRectificationRequest(idempotency_key="x", county_id="c1"), metadata=chief
    )
    assert await _code(bad) is grpc.StatusCode.INVALID_ARGUMENT

    await api.stub.ReportRectificationProgress(
        cases_pb2.ReportRectificationProgressRequest(
            idempotency_key="p1", item_id=item.item_id, note="ledger drafted", percent_done=50
        ),
        metadata=officer,
    )
    not_done = await api.stub.VerifyRectification(
        cases_pb2.VerifyRectificationRequest(
            idempotency_key="v1", item_id=item.item_id, done=False, note="not posted yet"
        ),
        metadata=chief,
    )
    assert not_done.item.status == "open"
    closed = await api.stub.VerifyRectification(
        cases_pb2.VerifyRectificationRequest(
            idempotency_key="v2", item_id=item.item_id, done=True, note="posted"
        ),
        metadata=chief,
    )
    assert closed.item.status == "closed"
    assert [p.kind for p in closed.item.progress] == [
        "progress",
        "verified_not_done",
        "verified_done",
    ]
    late = api.stub.ReportRectificationProgress(
        cases_pb2.ReportRectificationProgressRequest(
            idempotency_key="p2", item_id=item.item_id, note="more", percent_done=100
        ),
        metadata=officer,
    )
    assert await _code(late) is grpc.StatusCode.FAILED_PRECONDITION

    other = await api.stub.OpenRectification(
        cases_pb2.OpenRectificationRequest(
            idempotency_key="open-2",
            county_id="c1",
            zone_id="z1",
            township_id="t2",
            source=cases_pb2.RECTIFICATION_SOURCE_CAMPAIGN,
            source_ref="campaign-poverty-funds",
            owner_unit="Hedong township",
            finding="Fake claims",
        ),
        metadata=chief,
    )
    result = await DeadlineScanner(api.db).scan(now=NOW + timedelta(days=120))
    assert result.breached == [f"{other.item.item_id}:rectification:1"]
    escalated = await api.stub.GetRectification(
        cases_pb2.GetRectificationRequest(item_id=other.item.item_id), metadata=officer
    )
    assert escalated.item.escalated and escalated.item.progress[-1].kind == "escalated"
    listed = await api.stub.ListRectifications(
        cases_pb2.ListRectificationsRequest(county_id="c1", open_only=True), metadata=chief
    )
    assert [i.item_id for i in listed.items] == [other.item.item_id]
    async with api.db.session() as session:
        kinds = (await session.exec(select(OutboxMessage.event_type))).all()
    assert kinds.count("xiezuo.cases.rectification_closed.v1") == 1
    assert kinds.count("xiezuo.cases.rectification_opened.v1") == 2


async def test_related_clues_and_joint_cases_are_commands_on_the_record(api: Api) -> None:
    await _register(api.db, "clue-r1")
    await _register(api.db, "clue-r2", township="t2")
    chief = api.as_("chief", "zone_chief")
    officer = api.as_("a", "case_officer")

    def relate(key: str, one: str, other: str, reason: str = "same land deal") -> Any:
        request = cases_pb2.LinkRelatedCluesRequest(
            idempotency_key=key, case_id=one, related_case_id=other, reason=reason
        )
        return api.stub.LinkRelatedClues(request, metadata=chief)

    before = await _steps(api.db)
    assert await _code(relate("l0", "clue-r1", "clue-r2", reason=" ")) is (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await _code(relate("l0", "clue-r1", "clue-r1")) is grpc.StatusCode.INVALID_ARGUMENT
    assert await _steps(api.db) == before
    first = await relate("l1", "clue-r1", "clue-r2")
    again = await relate("l1", "clue-r1", "clue-r2")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.step.step_id == first.step.step_id and first.step.action == "link_related"
    # The same pair the other way round is the same link.
    assert await _code(relate("l2", "clue-r2", "clue-r1")) is grpc.StatusCode.ALREADY_EXISTS
    assert await _code(relate("l1", "clue-r2", "clue-r1")) is grpc.StatusCode.INVALID_ARGUMENT
    officer_call = api.stub.LinkRelatedClues(
        cases_pb2.LinkRelatedCluesRequest(
            idempotency_key="l3", case_id="clue-r1", related_case_id="clue-r2", reason="x"
        ),
        metadata=officer,
    )
    assert await _code(officer_call) is grpc.StatusCode.PERMISSION_DENIED
    assert await _code(relate("l4", "clue-r1", "nope")) is grpc.StatusCode.NOT_FOUND
    for case_id, other in (("clue-r1", "clue-r2"), ("clue-r2", "clue-r1")):
        got = await api.stub.GetCase(cases_pb2.GetCaseRequest(case_id=case_id), metadata=chief)
        assert [(link.kind, link.reason) for link in got.links] == [("related", "same land deal")]
        related = json.loads(got.history[-1].detail_json)["related_clue_id"]
        assert (got.history[-1].action, related) == ("link_related", other)

    # A joint case: teams come from none of its townships.
    def joint(key: str, *townships: str, reason: str = "one scheme, two townships") -> Any:
        request = cases_pb2.DeclareJointCaseRequest(
            idempotency_key=key, case_id="clue-r1", township_ids=list(townships), reason=reason
        )
        return api.stub.DeclareJointCase(request, metadata=chief)

    assert await _code(joint("j0", "t1")) is grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(joint("j0")) is grpc.StatusCode.INVALID_ARGUMENT
    declared = await joint("j1", "t3", "t2")
    assert (await joint("j1", "t3", "t2")).replayed
    assert list(declared.case.township_ids) == ["t1", "t2", "t3"]
    assert await _code(joint("j2", "t2")) is grpc.StatusCode.FAILED_PRECONDITION
    deputy = api.as_("dep", "deputy_chief")
    await _act(api, deputy, "clue-r1", "propose_disposal", choice="preliminary_verification")
    await _act(api, chief, "clue-r1", "approve_disposal")
    requests = [r for r in await _team_requests(api.db) if r["case_id"] == "clue-r1"]
    assert [(r["subject_township_id"], r["excluded_township_ids"]) for r in requests] == [
        ("t1", ["t1", "t2", "t3"])
    ]
    # Widening the joint case while the team is awaited asks staffing again.
    await joint("j3", "t4")
    requests = [r for r in await _team_requests(api.db) if r["case_id"] == "clue-r1"]
    assert requests[-1]["excluded_township_ids"] == ["t1", "t2", "t3", "t4"]
    assert len({r["request_id"] for r in requests}) == 2
    # Listing by township finds the joint case under each of its townships, not only t1's.
    for township, expected in (("t1", True), ("t3", True), ("t4", True), ("t9", False)):
        listed = await api.stub.ListCases(
            cases_pb2.ListCasesRequest(county_id="c1", township_id=township), metadata=chief
        )
        assert ("clue-r1" in [c.case_id for c in listed.cases]) is expected, township


async def _decide(db: Database, case_id: str, decided_at: datetime) -> str:
    """Put a registered file straight into `decided` (a party sanction); its subject key."""
    from services.cases.domain.casefile import Decision, Sanction
    from services.cases.store import codec
    from services.cases.store.tables import CaseFileRow

    async with db.transaction() as session:
        row = await session.get(CaseFileRow, case_id)
        assert row is not None
        file = codec.decode(row.state)
        decision = Decision("party_sanction", ((Sanction("party", "serious_warning"), 18),))
        decided = replace(
            file,
            stage="decided",
            filed=True,
            clock="",
            decision=decision,
            decided_at=decided_at.isoformat(),
        )
        row.state, row.stage = codec.encode(decided), "decided"
        session.add(row)
        return row.subject_key


async def test_the_sanctioned_person_files_their_own_appeal_within_the_window(api: Api) -> None:
    await _register(api.db, "case-a")
    await _register(api.db, "case-late")
    subject = await _decide(api.db, "case-a", NOW - timedelta(days=3))
    await _decide(api.db, "case-late", NOW - timedelta(days=40))
    person = api.as_(subject, "case_subject")
    stranger = api.as_("someone-else", "case_subject")
    assert (
        await _code(_act(api, stranger, "case-a", "file_appeal"))
        is grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await _code(_act(api, person, "case-a", "record_evidence"))
        is grpc.StatusCode.PERMISSION_DENIED
    )
    get = cases_pb2.GetCaseRequest(case_id="case-a")
    assert await _code(api.stub.GetCase(get, metadata=person)) is grpc.StatusCode.PERMISSION_DENIED
    filed = await _act(api, person, "case-a", "file_appeal")
    # The appellant learns the step was taken, never the file (teams, stage, pending).
    assert filed.step.to_stage == "appeal_first_review" and not filed.HasField("case")
    assert json.loads(filed.step.detail_json)["filed_by"] == "subject"
    late = _act(api, api.as_("chief", "zone_chief"), "case-late", "file_appeal")
    assert await _code(late) is grpc.StatusCode.FAILED_PRECONDITION
    # A changed outcome names the new decision and its sanctions.
    leader = api.as_("lead", "county_leadership")
    bad = _act(api, leader, "case-a", "decide_appeal", choice="changed")
    assert await _code(bad) is grpc.StatusCode.INVALID_ARGUMENT
    changed = await _act(
        api,
        leader,
        "case-a",
        "decide_appeal",
        choice="changed",
        decision="party_sanction",
        sanctions=[cases_pb2.Sanction(track="party", kind="warning")],
    )
    detail = json.loads(changed.step.detail_json)
    assert (changed.case.stage, detail["decision"], detail["previous_decision"]) == (
        "decided",
        "party_sanction",
        "party_sanction",
    )
    assert detail["sanctions"] == [{"track": "party", "kind": "warning", "effect_months": 12}]
