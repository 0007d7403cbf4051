"""Workflow steps on SQLite and PostgreSQL: once per key, with history, audit, outbox, teams."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, func, select

from services.cases.domain.casefile import Actor, Command, Forbidden
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.teams import RecusalHandler, on_recusal, on_team_assigned
from services.cases.store import codec
from services.cases.store.tables import CaseFileRow, CaseMemberRow, CaseStepRow, DeadlineRow
from services.cases.store.workflow import KeyReused, Workflow
from services.contracts.staffing import RecusalRecorded, TeamAssigned, TeamMember
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase
from tests.integration.helpers import register_case_clue

# Registered an hour ago: the commands below run on real time and must be within the limits.
NOW = datetime.now(UTC) - timedelta(hours=1)


def _envelope(source: str = "xiezuo/staffing") -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type="t",
        source=source,
        time=NOW,
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )


async def _register(db: Database, clue_id: str) -> None:
    await register_case_clue(db, clue_id, at=NOW)


def _allow(*_: object) -> None:
    return None


async def _events(db: Database, event_type: str) -> list[dict[str, object]]:
    async with db.session() as session:
        rows = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.event_type == event_type))
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_a_command_acts_once_per_key_and_leaves_a_full_record(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-1")
    workflow = Workflow(db, {DEFAULT_RULES.version: DEFAULT_RULES})
    officer = Actor("a", frozenset({"case_officer"}))
    propose = Command("propose_disposal", choice="preliminary_verification")
    kwargs: dict[str, Any] = dict(county_id="c1", case_id="clue-1", authorize=_allow)
    first = await workflow.act(
        idempotency_key="k1", digest="d1", command=propose, actor=officer, **kwargs
    )
    again = await workflow.act(
        idempotency_key="k1", digest="d1", command=propose, actor=officer, **kwargs
    )
    assert (first.to_stage, first.replayed, again.replayed) == ("disposal_proposed", False, True)
    assert again.step_id == first.step_id
    with pytest.raises(KeyReused):
        await workflow.act(
            idempotency_key="k1", digest="other", command=propose, actor=officer, **kwargs
        )
    with pytest.raises(Forbidden):
        await workflow.act(
            idempotency_key="k2",
            digest="d2",
            command=Command("approve_disposal"),
            actor=officer,
            **kwargs,
        )
    zone = Actor("z", frozenset({"zone_chief"}))
    disposed = await workflow.act(
        idempotency_key="k3", digest="d3", command=Command("approve_disposal"), actor=zone, **kwargs
    )
    assert disposed.to_stage == "verification"

    async with db.session() as session:
        steps = (await session.exec(select(CaseStepRow).order_by(col(CaseStepRow.id)))).all()
        audit_count = (
            await session.exec(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.record_type == "case")
            )
        ).one()
        deadline, verification = (
            await session.exec(select(DeadlineRow).order_by(col(DeadlineRow.started_at)))
        ).all()
    assert [(s.actor, s.from_stage, s.to_stage) for s in steps] == [
        ("a", "registered", "disposal_proposed"),
        ("z", "disposal_proposed", "verification"),
    ]
    assert audit_count == 2
    assert (deadline.kind, deadline.status) == ("disposal", "met")
    assert (verification.kind, verification.status) == ("verification", "open")
    disposed_events = await _events(db, "xiezuo.cases.clue_disposed.v1")
    assert len(disposed_events) == 1 and disposed_events[0]["detail"]["way"] == (  # type: ignore[index]
        "preliminary_verification"
    )
    requests = await _events(db, "xiezuo.cases.team_requested.v1")
    assert [(r["stage"], r["subject_township_id"]) for r in requests] == [("verification", "t1")]


async def test_staffing_sets_the_team_and_a_recusal_removes_it_at_once(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-2")
    workflow = Workflow(db, {DEFAULT_RULES.version: DEFAULT_RULES})
    for key, command, roles in (
        ("p", Command("propose_disposal", choice="preliminary_verification"), {"case_officer"}),
        ("a", Command("approve_disposal"), {"zone_chief"}),
    ):
        await workflow.act(
            county_id="c1",
            case_id="clue-2",
            idempotency_key=key,
            digest=key,
            command=command,
            actor=Actor("x", frozenset(roles)),
            authorize=_allow,
        )
    (requested,) = await _events(db, "xiezuo.cases.team_requested.v1")
    stale = TeamAssigned(
        county_id="c1",
        zone_id="z1",
        request_id="clue-2:verification:0",
        case_id="clue-2",
        stage="verification",
        draw_id="draw-0",
        members=[TeamMember(person_id="x", home_township_id="t2")],
        assigned_at=NOW,
    )
    async with db.transaction() as session:
        # Matched by request id, not by stage: an answer to another request changes nothing.
        await on_team_assigned(session, stale, _envelope())
    assigned = TeamAssigned(
        county_id="c1",
        zone_id="z1",
        request_id=str(requested["request_id"]),
        case_id="clue-2",
        stage="verification",
        draw_id="draw-1",
        members=[
            TeamMember(person_id="a", home_township_id="t2"),
            TeamMember(person_id="b", home_township_id="t3"),
        ],
        assigned_at=NOW,
    )
    async with db.transaction() as session:
        await on_team_assigned(session, assigned, _envelope())
    recusal = RecusalRecorded(
        county_id="c1",
        zone_id="z1",
        recusal_id="rc1",
        case_id="clue-2",
        person_id="a",
        ground="close_relative",
        raised_by_role="staff",
        granted=True,
        decided_by="head",
        decided_at=NOW,
    )
    async with db.transaction() as session:
        await on_recusal(session, recusal, {DEFAULT_RULES.version: DEFAULT_RULES})
    async with db.session() as session:
        members = (await session.exec(select(CaseMemberRow))).all()
        row = await session.get(CaseFileRow, "clue-2")
    assert [(m.person_id, m.team) for m in members if m.team != "recused"] == [("b", "working")]
    assert row is not None and codec.decode(row.state).recused == ("a",)
    with pytest.raises(Forbidden):
        await workflow.act(
            county_id="c1",
            case_id="clue-2",
            idempotency_key="s",
            digest="s",
            command=Command("sign_report"),
            actor=Actor("a", frozenset({"case_officer"})),
            authorize=_allow,
        )


async def test_team_sizes_come_from_the_rule_set_also_when_a_recusal_empties_a_team(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-size")
    # The county draws three for a verification (the default is two): same version key, as a
    # county's own file would be the version its clues were registered under.
    rules = replace(DEFAULT_RULES, team_sizes={**DEFAULT_RULES.team_sizes, "verification": 3})
    by_version = {rules.version: rules}
    workflow = Workflow(db, by_version)
    for key, command, roles in (
        ("p", Command("propose_disposal", choice="preliminary_verification"), {"case_officer"}),
        ("a", Command("approve_disposal"), {"zone_chief"}),
    ):
        await workflow.act(
            county_id="c1",
            case_id="clue-size",
            idempotency_key=key,
            digest=key,
            command=command,
            actor=Actor("x", frozenset(roles)),
            authorize=_allow,
        )
    (requested,) = await _events(db, "xiezuo.cases.team_requested.v1")
    assert requested["team_size"] == 3
    assigned = TeamAssigned(
        county_id="c1",
        zone_id="z1",
        request_id=str(requested["request_id"]),
        case_id="clue-size",
        stage="verification",
        draw_id="draw-1",
        members=[TeamMember(person_id="a", home_township_id="t2")],
        assigned_at=NOW,
    )
    async with db.transaction() as session:
        await on_team_assigned(session, assigned, _envelope())
    recusal = RecusalRecorded(
        county_id="c1",
        zone_id="z1",
        recusal_id="rc-size",
        case_id="clue-size",
        person_id="a",
        ground="witness",
        raised_by_role="staff_member",
        granted=True,
        decided_by="head",
        decided_at=NOW,
    )
    async with db.transaction() as session:
        # As the consumer calls it: the handler the composition root binds.
        await RecusalHandler(by_version)(session, recusal, _envelope())
    first, again = await _events(db, "xiezuo.cases.team_requested.v1")
    assert again["request_id"] != first["request_id"] and again["team_size"] == 3


async def test_a_disposal_by_closure_is_published_as_a_disposal_and_a_closure(
    make_database: MakeDatabase,
) -> None:
    """予以了结 is one of the four ways: assessment counts it as a disposal, by way."""
    from services.assessment.domain.kpis import Kpi, detailed_kpi
    from services.assessment.handlers import mappers
    from services.contracts.cases import ClueDisposed

    db = await make_database("cases")
    await _register(db, "clue-close")
    workflow = Workflow(db, {DEFAULT_RULES.version: DEFAULT_RULES})
    for key, command, roles in (
        ("p", Command("propose_disposal", choice="close"), {"case_officer"}),
        ("a", Command("approve_disposal"), {"zone_chief"}),
    ):
        await workflow.act(
            county_id="c1",
            case_id="clue-close",
            idempotency_key=key,
            digest=key,
            command=command,
            actor=Actor("x", frozenset(roles)),
            authorize=_allow,
        )
    (disposed,) = await _events(db, "xiezuo.cases.clue_disposed.v1")
    (closed,) = await _events(db, "xiezuo.cases.case_closed.v1")
    assert disposed["detail"]["way"] == "close"  # type: ignore[index]
    assert (disposed["to_stage"], closed["to_stage"]) == ("closed", "closed")
    kpis = {f.kpi for f in mappers.clue_disposed(ClueDisposed(**disposed), NOW)}
    assert kpis == {Kpi.CLUES_DISPOSED, detailed_kpi(Kpi.CLUES_DISPOSED, "close")}


async def test_stored_clues_and_verifications_get_deadlines_on_the_record(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    workflow = Workflow(db, {DEFAULT_RULES.version: DEFAULT_RULES})
    for clue, way in (("clue-s", "store_pending"), ("clue-v", "preliminary_verification")):
        await _register(db, clue)
        for key, command, roles in (
            ("p", Command("propose_disposal", choice=way), {"case_officer"}),
            ("a", Command("approve_disposal"), {"zone_chief"}),
        ):
            await workflow.act(
                county_id="c1",
                case_id=clue,
                idempotency_key=f"{clue}-{key}",
                digest=key,
                command=command,
                actor=Actor("x", frozenset(roles)),
                authorize=_allow,
            )
    await workflow.act(
        county_id="c1",
        case_id="clue-s",
        idempotency_key="keep",
        digest="keep",
        command=Command("review_stored", choice="keep"),
        actor=Actor("x", frozenset({"zone_chief"})),
        authorize=_allow,
    )
    async with db.session() as session:
        rows = (
            await session.exec(select(DeadlineRow).order_by(col(DeadlineRow.deadline_id)))
        ).all()
    assert [(d.case_id, d.kind, d.status) for d in rows] == [
        ("clue-s", "disposal", "met"),
        ("clue-s", "stored_review", "met"),
        ("clue-s", "stored_review", "open"),
        ("clue-v", "disposal", "met"),
        ("clue-v", "verification", "open"),
    ]


async def test_retention_runs_its_own_deadline_beside_the_investigation(
    make_database: MakeDatabase,
) -> None:
    from dataclasses import replace as replace_file

    from services.cases.domain.casefile import Meeting
    from services.cases.domain.ruleset import add_months

    db = await make_database("cases")
    await _register(db, "clue-r")
    async with db.transaction() as session:
        row = await session.get(CaseFileRow, "clue-r")
        assert row is not None
        investigating = replace_file(
            codec.decode(row.state), stage="investigation", filed=True, clock=""
        )
        row.state, row.stage = codec.encode(investigating), "investigation"
        session.add(row)
    workflow = Workflow(db, {DEFAULT_RULES.version: DEFAULT_RULES})
    members = ("l", "m2", "m3")
    meeting = Meeting("standing_committee", "纪要 9", members, members, 3)
    steps = (
        (
            "ask",
            Command("request_retention", reason="may flee", meeting=meeting),
            "l",
            "county_leadership",
        ),
        ("ok", Command("approve_retention"), "c", "city_commission"),
        (
            "ask2",
            Command("request_retention", reason="accomplices", meeting=meeting),
            "l",
            "county_leadership",
        ),
        ("ok2", Command("approve_retention"), "c", "city_commission"),
        ("end", Command("end_retention"), "a", "case_officer"),
    )
    for key, command, person, role in steps:
        await workflow.act(
            county_id="c1",
            case_id="clue-r",
            idempotency_key=key,
            digest=key,
            command=command,
            actor=Actor(person, frozenset({role})),
            authorize=_allow,
        )
    async with db.session() as session:
        rows = (
            await session.exec(
                select(DeadlineRow)
                .where(DeadlineRow.kind == "retention")
                .order_by(col(DeadlineRow.deadline_id))
            )
        ).all()
    first, extended = rows
    assert (first.status, extended.status, extended.supersedes) == (
        "extended",
        "met",
        first.deadline_id,
    )
    assert extended.due_at == add_months(first.due_at, 3)
