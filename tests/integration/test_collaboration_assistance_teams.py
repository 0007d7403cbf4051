"""An accepted letter gets a team drawn by the asked county's staffing, over the real broker.

County A asks county B; B's leadership accepts naming the subject's township in B; B's
staffing draws from B's own county pool with the usual draw (never from that township),
records and audits it, and publishes AssistanceTeamDrawn — once, however often the request
is delivered. SQLite and PostgreSQL (the make_database fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select
from xiezuo.collaboration.v1 import collaboration_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc as pb_grpc

from services.collaboration.api.servicer import CollaborationServicer
from services.collaboration.domain.letter_kinds import parse_letter_kinds
from services.collaboration.domain.network import parse_network
from services.collaboration.handlers.assistance_teams import on_assistance_team_drawn
from services.collaboration.handlers.letters import LetterRecordHandler
from services.collaboration.letters import LetterDesk
from services.collaboration.settings import DEFAULT_LETTER_KINDS_FILE
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store.network import import_network
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import (
    LETTERS_TOPIC,
    TEAMS_TOPIC,
    AssistanceLetterClosed,
    AssistanceTeamRequested,
    LetterAccepted,
    LetterAnswered,
    LetterDeclined,
    LetterSent,
)
from services.contracts.staffing import DRAWS_TOPIC, AssistanceTeamDrawn, TeamAssigned, TeamMember
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.inbox import EventConsumer, PoisonEvent
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry, OutboxMessage
from services.runtime.outbox import OutboxRelay
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from services.staffing.domain.county_file import parse_county
from services.staffing.domain.draw import DrawRequest, ExclusionReason, Pool, Stage, replay
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.drawing import TeamDrawer, assistance_request_id
from services.staffing.handlers.assistance_team import (
    AssistanceTeamHandler,
    on_assistance_letter_closed,
)
from services.staffing.secrets import CountySecrets
from services.staffing.store.draws import record_of
from services.staffing.store.registry import import_county
from services.staffing.store.tables import AssignmentRow, DrawRow
from tests.collaboration_network import network_yaml
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    count_rows,
    create_topics,
    produce,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka

ISSUER, AUDIENCE = "test", "xiezuo"

# County B's registry: two zones; t-1 is the subject's township, its people must never be drawn.
COUNTY_B = """
county: {{county_id: {county}, name: 乙县}}
skills: [law]
zones:
  - zone_id: z-1
    name: 城关协作区
    townships:
      - {{township_id: t-1, name: 城关镇, effective_from: 2026-01-01}}
      - {{township_id: t-2, name: 河口镇, effective_from: 2026-01-01}}
  - zone_id: z-2
    name: 山区协作区
    townships:
      - {{township_id: t-3, name: 石门乡, effective_from: 2026-01-01}}
people:
  - {{person_id: p-1, name: 城一, roles: [township_member], home_township: t-1}}
  - {{person_id: p-2, name: 城二, roles: [supervision_staff], home_township: t-1}}
  - {{person_id: p-3, name: 城三, roles: [township_secretary], home_township: t-1}}
  - {{person_id: p-4, name: 河一, roles: [township_member], home_township: t-2}}
  - {{person_id: p-5, name: 石一, roles: [supervision_staff], home_township: t-3}}
  - {{person_id: p-6, name: 石二, roles: [township_member], home_township: t-3}}
"""


@asynccontextmanager
async def _serving(servicer: CollaborationServicer) -> AsyncIterator[tuple[Any, TokenIssuer]]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.collaboration.v1.CollaborationService"],
        register=lambda server: pb_grpc.add_CollaborationServiceServicer_to_server(
            servicer, server
        ),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield (
            pb_grpc.CollaborationServiceStub(channel),
            TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE),
        )
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


@asynccontextmanager
async def _relaying(database: Database, producer: Any) -> AsyncIterator[None]:
    relay = OutboxRelay(database, producer, idle_poll_seconds=0.2)
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        await relay.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _as(issuer: TokenIssuer, county: str, subject: str, *roles: str) -> Any:
    token = issuer.issue(
        Principal(subject=subject, roles=frozenset(roles), county_id=county, zone_ids=("z-1",))
    )
    return (("authorization", f"Bearer {token}"),)


def _raw(message: OutboxMessage, event_id: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The record collaboration's relay published for `message`, under `event_id`."""
    envelope = Envelope(
        id=event_id,
        type=message.event_type,
        source=message.source,
        time=datetime.now(UTC),
        county_id=message.county_id,
        zone_id=message.zone_id,
        data=message.payload.encode(),
        subject=message.subject,
    )
    return (message.partition_key.encode(), envelope.data, envelope.headers())


async def test_an_accepted_letter_gets_a_team_from_the_asked_countys_pool_once(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    a, b = unique("county-a"), unique("county-b")
    keys = {a: Ed25519PrivateKey.generate(), b: Ed25519PrivateKey.generate()}
    collaboration = await make_database("collaboration")
    network, sha = parse_network(network_yaml(keys))
    async with collaboration.transaction() as session:
        await import_network(session, network, sha256=sha, actor="test")
    staffing = await make_database("staffing")
    async with staffing.transaction() as session:
        await import_county(session, parse_county(COUNTY_B.format(county=b)), actor="test")
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    desk = LetterDesk(kinds=kinds, keys=CountySigningKeys(keys))
    bootstrap = kafka.bootstrap_servers

    async with started_producer(bootstrap) as producer:
        letters_in = EventConsumer(
            service=unique("collaboration"),
            database=collaboration,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        receiver = LetterRecordHandler(desk)
        for record_class in (LetterSent, LetterAccepted, LetterDeclined, LetterAnswered):
            letters_in.on(record_class, receiver, replay_is_poison=True)
        letters_in.on(AssistanceTeamDrawn, on_assistance_team_drawn)
        teams_in = EventConsumer(
            service=unique("staffing"),
            database=staffing,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        drawer = TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES])
        teams_in.on(AssistanceTeamRequested, AssistanceTeamHandler(drawer))
        teams_in.on(AssistanceLetterClosed, on_assistance_letter_closed)
        await create_topics(
            bootstrap,
            LETTERS_TOPIC,
            TEAMS_TOPIC,
            DRAWS_TOPIC,
            letters_in.dead_letter_topic,
            teams_in.dead_letter_topic,
        )
        async with (
            _relaying(collaboration, producer),
            _relaying(staffing, producer),
            running_broker(bootstrap, letters_in),
            running_broker(bootstrap, teams_in),
            _serving(CollaborationServicer(collaboration, desk)) as (stub, issuer),
        ):
            drafted = await stub.RequestLetter(
                pb.RequestLetterRequest(
                    idempotency_key=uuid.uuid4().hex,
                    county_id=a,
                    zone_id="z-1",
                    case_id="case-7",
                    target_county_id=b,
                    kind=pb.LETTER_KIND_VERIFY_FACT,
                    question="请核实王某2025年是否在贵县某建筑公司领取报酬",
                    fields={"subject_name": "王某", "subject_employer": "某建筑公司"},
                ),
                metadata=_as(issuer, a, "officer-a", "case_officer"),
            )
            letter_id = drafted.letter.letter_id
            await stub.ApproveLetter(
                pb.ApproveLetterRequest(idempotency_key="k-approve", letter_id=letter_id),
                metadata=_as(issuer, a, "leader-a", "county_leadership"),
            )

            async def received() -> bool:
                async with collaboration.session() as session:
                    return await session.get(LetterRow, (b, letter_id)) is not None

            await wait_until(received, "B to verify and record the letter")
            leader_b = _as(issuer, b, "leader-b", "county_leadership")
            # Only an accepted letter has a team: a township on a decline is refused.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.DecideLetter(
                    pb.DecideLetterRequest(
                        idempotency_key="k-decline",
                        letter_id=letter_id,
                        accept=False,
                        ground="不属本县管辖",
                        subject_township_id="t-1",
                    ),
                    metadata=leader_b,
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            await stub.DecideLetter(
                pb.DecideLetterRequest(
                    idempotency_key="k-accept",
                    letter_id=letter_id,
                    accept=True,
                    subject_township_id="t-1",
                ),
                metadata=leader_b,
            )
            request_id = assistance_request_id(letter_id)

            async def drawn() -> bool:
                return (
                    await count_rows(staffing, DrawRow, col(DrawRow.request_id) == request_id) > 0
                )

            await wait_until(drawn, "B's staffing to draw the letter's team")

            # Redelivery (same event id) and a re-send under a new event id: still one draw.
            async with collaboration.session() as session:
                message = (
                    await session.exec(
                        select(OutboxMessage).where(
                            OutboxMessage.event_type == AssistanceTeamRequested.event_type,
                            OutboxMessage.subject == letter_id,
                        )
                    )
                ).one()
            await produce(
                bootstrap,
                TEAMS_TOPIC,
                [_raw(message, message.event_id), _raw(message, str(uuid.uuid4()))],
            )

            async def both_applied() -> bool:
                return (
                    await count_rows(
                        staffing, InboxEntry, col(InboxEntry.consumer) == teams_in.consumer_name
                    )
                    >= 2
                )

            await wait_until(both_applied, "the re-sent request to be applied (as a no-op)")

            async def team_on_letter() -> bool:
                async with collaboration.session() as session:
                    row = await session.get(LetterRow, (b, letter_id))
                    return row is not None and row.team_draw_id is not None

            await wait_until(team_on_letter, "B's collaboration to record the team on the letter")
            shown = (
                await stub.GetLetter(pb.GetLetterRequest(letter_id=letter_id), metadata=leader_b)
            ).letter
            asked = (
                await stub.GetLetter(
                    pb.GetLetterRequest(letter_id=letter_id),
                    metadata=_as(issuer, a, "leader-a", "county_leadership"),
                )
            ).letter

            async def team_states() -> set[str]:
                async with staffing.session() as session:
                    rows = await session.exec(
                        select(AssignmentRow.state).where(AssignmentRow.request_id == request_id)
                    )
                    return set(rows.all())

            # The team counts as workload until B answers the letter; then it is freed.
            assert await team_states() == {"drawn"}
            await stub.AnswerLetter(
                pb.AnswerLetterRequest(
                    idempotency_key="k-answer",
                    letter_id=letter_id,
                    findings="经核实，王某2025年4月至9月在该公司领取报酬",
                ),
                metadata=_as(issuer, b, "officer-b", "case_officer"),
            )

            async def team_released() -> bool:
                return await team_states() == {"released"}

            await wait_until(team_released, "B's staffing to free the answered letter's team")

    # What crossed into staffing: the letter id, kind, size, township, time — nothing else.
    requested = json.loads(message.payload)
    assert set(requested) == {
        "county_id",
        "zone_id",
        "letter_id",
        "kind",
        "subject_township_id",
        "team_size",
        "accepted_at",
    }
    assert requested["county_id"] == b and requested["team_size"] == 2

    assert await count_rows(staffing, DrawRow, col(DrawRow.request_id) == request_id) == 1
    async with staffing.session() as session:
        row = (await session.exec(select(DrawRow).where(DrawRow.request_id == request_id))).one()
        assignments = list(
            (
                await session.exec(
                    select(AssignmentRow).where(AssignmentRow.request_id == request_id)
                )
            ).all()
        )
        audit_actions = list(
            (
                await session.exec(
                    select(AuditEntry.action).where(
                        AuditEntry.county_id == b,
                        AuditEntry.record_type == "draw",
                        AuditEntry.record_id == row.draw_id,
                    )
                )
            ).all()
        )
        outbox = list(
            (await session.exec(select(OutboxMessage).where(OutboxMessage.county_id == b))).all()
        )
    assert row.county_id == b and row.case_id == letter_id and row.filled
    record = record_of(row)
    # From B's whole county pool (both zones), never the subject's township.
    assert {fact.person_id for fact in record.candidates} == {
        "p-1",
        "p-2",
        "p-3",
        "p-4",
        "p-5",
        "p-6",
    }
    members = set(record.outcome.members)
    assert len(members) == 2 and members <= {"p-4", "p-5", "p-6"}
    assert {
        e.person_id for e in record.exclusions if e.reason is ExclusionReason.SUBJECT_TOWNSHIP
    } == {
        "p-1",
        "p-2",
        "p-3",
    }
    assert replay(record).matches
    assert {assignment.person_id for assignment in assignments} == members
    assert audit_actions == ["draw.recorded"]
    async with staffing.session() as session:
        released = list(
            (
                await session.exec(
                    select(AuditEntry.action).where(
                        AuditEntry.county_id == b,
                        AuditEntry.action == "workload.released",
                        AuditEntry.record_id == letter_id,
                    )
                )
            ).all()
        )
    assert released == ["workload.released"]
    # Its own result event, not TeamAssigned (the letter is no case of cases').
    types = [m.event_type for m in outbox]
    assert types.count(AssistanceTeamDrawn.event_type) == 1
    assert TeamAssigned.event_type not in types
    drawn_event = json.loads(
        next(m.payload for m in outbox if m.event_type == AssistanceTeamDrawn.event_type)
    )
    assert drawn_event["letter_id"] == letter_id
    assert {m["person_id"] for m in drawn_event["members"]} == members
    assert all(m["home_township_id"] != "t-1" for m in drawn_event["members"])

    # The team is on B's letter (GetLetter), and on A's side of it nothing of B's staff.
    assert shown.team_draw_id == row.draw_id
    assert list(shown.team_person_ids) == list(record.outcome.members)
    assert not asked.team_draw_id and not asked.team_person_ids

    # B's collaboration audit says the acceptance asked for the team.
    async with collaboration.session() as session:
        accepted = (
            await session.exec(
                select(AuditEntry).where(
                    AuditEntry.county_id == b,
                    AuditEntry.action == "letter.accepted",
                    AuditEntry.record_id == letter_id,
                )
            )
        ).one()
        team_drawn = list(
            (
                await session.exec(
                    select(AuditEntry.action).where(
                        AuditEntry.county_id == b,
                        AuditEntry.action == "letter.team_drawn",
                        AuditEntry.record_id == letter_id,
                    )
                )
            ).all()
        )
    detail = json.loads(accepted.detail)
    assert detail["team_size"] == 2 and detail["subject_township_id"] == "t-1"
    assert team_drawn == ["letter.team_drawn"]


async def test_a_redraw_of_a_letters_team_is_announced_for_the_letter_not_for_a_case(
    make_database: MakeDatabase,
) -> None:
    # A member's decline redraws through staffing's usual path (round 1, the rest kept): the
    # result must reach collaboration as AssistanceTeamDrawn, never as TeamAssigned, which
    # cases would dead-letter (it has no such case).
    county = unique("county-b")
    staffing = await make_database("staffing")
    async with staffing.transaction() as session:
        await import_county(session, parse_county(COUNTY_B.format(county=county)), actor="test")
    drawer = TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES])
    letter_id = unique("L")
    request = DrawRequest(
        request_id=assistance_request_id(letter_id),
        case_id=letter_id,
        county_id=county,
        zone_id="*",
        stage=Stage.VERIFICATION,
        subject_township_id="t-1",
        excluded_township_ids=("t-1",),
        subject_key=f"letter:{letter_id}",
        team_size=2,
        pool=Pool.COUNTY,
        on_date=date(2026, 3, 2),
    )
    async with staffing.transaction() as session:
        first = await drawer.draw(session, request, round_=0, cause="requested", actor="test")
    leader, decliner = first.outcome.members
    async with staffing.transaction() as session:
        await drawer.draw(
            session,
            request.model_copy(update={"team_size": 1, "excluded_person_ids": (leader, decliner)}),
            round_=1,
            cause="declined",
            actor="test",
            kept=[TeamMember(person_id=leader, home_township_id="", leader=True)],
        )
    async with staffing.session() as session:
        outbox = list(
            (
                await session.exec(select(OutboxMessage).where(OutboxMessage.county_id == county))
            ).all()
        )
    assert TeamAssigned.event_type not in {m.event_type for m in outbox}
    announced = [
        json.loads(m.payload) for m in outbox if m.event_type == AssistanceTeamDrawn.event_type
    ]
    assert len(announced) == 2
    # Round 1 keeps the leader and draws one more, never from t-1 nor the decliner.
    members = announced[1]["members"]
    assert members[0]["person_id"] == leader and len(members) == 2
    assert members[1]["person_id"] not in {decliner, "p-1", "p-2", "p-3"}
    assert announced[1]["reasons"] == []
    assert announced[0]["letter_id"] == announced[1]["letter_id"] == letter_id


async def test_a_township_the_asked_county_does_not_have_draws_nothing(
    make_database: MakeDatabase,
) -> None:
    # A mistyped township would exclude nobody: the request is refused (dead letter) instead.
    county = unique("county-b")
    staffing = await make_database("staffing")
    async with staffing.transaction() as session:
        await import_county(session, parse_county(COUNTY_B.format(county=county)), actor="test")
    handler = AssistanceTeamHandler(TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES]))
    letter_id = unique("L")
    event = AssistanceTeamRequested(
        county_id=county,
        letter_id=letter_id,
        kind="verify_fact",
        subject_township_id="t-9",
        team_size=2,
        accepted_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/collaboration",
        time=datetime.now(UTC),
        county_id=county,
        zone_id="*",
        data=event.model_dump_json().encode(),
        subject=letter_id,
    )
    with pytest.raises(PoisonEvent, match="t-9"):
        async with staffing.transaction() as session:
            await handler(session, event, envelope)
    assert (
        await count_rows(
            staffing, DrawRow, col(DrawRow.request_id) == assistance_request_id(letter_id)
        )
        == 0
    )
