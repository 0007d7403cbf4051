"""A joint investigation (联合审查调查) over the real broker: one team from two counties' pools.

County A's leadership opens a joint case from its case naming county B and the subject's
township in A; B's leadership joins naming its own case and the subject's township in B. Each
county's staffing draws its share from its own pool under its own exclusion rules; the shares
cross as signed records of person ids only, and each county sees the whole team and only its
own case id. Forged joint records are dead-lettered. SQLite and PostgreSQL (make_database).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select
from xiezuo.collaboration.v1 import joint_cases_pb2 as jpb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc as jpb_grpc

from services.collaboration.api.joint_cases import JointCaseServicer
from services.collaboration.domain.letter_kinds import parse_letter_kinds
from services.collaboration.domain.network import parse_network
from services.collaboration.handlers.joint_cases import JointRecordHandler, TeamDrawnHandler
from services.collaboration.joint_cases import JointCaseDesk, view
from services.collaboration.letters import LetterDesk, seal, source_of
from services.collaboration.settings import DEFAULT_LETTER_KINDS_FILE
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store import joint_cases
from services.collaboration.store.network import import_network
from services.contracts.collaboration import (
    LETTERS_TOPIC,
    TEAMS_TOPIC,
    AssistanceTeamRequested,
    JointCaseAccepted,
    JointCaseOpened,
    JointShareDrawn,
)
from services.contracts.staffing import DRAWS_TOPIC, AssistanceTeamDrawn
from services.runtime.envelope import Envelope
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from services.staffing.domain.county_file import parse_county
from services.staffing.domain.draw import ExclusionReason
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.drawing import TeamDrawer, assistance_request_id
from services.staffing.handlers.assistance_team import AssistanceTeamHandler
from services.staffing.secrets import CountySecrets
from services.staffing.store.draws import record_of
from services.staffing.store.registry import import_county
from services.staffing.store.tables import DrawRow
from tests.collaboration_network import network_yaml
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    create_topics,
    produce,
    read_records,
    running_broker,
    started_producer,
    unique,
    wait_until,
)
from tests.integration.test_collaboration_assistance_teams import _relaying

pytestmark = pytest.mark.kafka

# Each county's registry; `{p}-t-1` is the subject's township there, never drawn from.
REGISTRY = """
county: {{county_id: {county}, name: 县{p}}}
skills: [law]
zones:
  - zone_id: z-1
    name: 城关协作区
    townships:
      - {{township_id: {p}-t-1, name: 城关镇, effective_from: 2026-01-01}}
      - {{township_id: {p}-t-2, name: 河口镇, effective_from: 2026-01-01}}
  - zone_id: z-2
    name: 山区协作区
    townships:
      - {{township_id: {p}-t-3, name: 石门乡, effective_from: 2026-01-01}}
people:
  - {{person_id: {p}-p-1, name: 城一, roles: [township_member], home_township: {p}-t-1}}
  - {{person_id: {p}-p-2, name: 城二, roles: [supervision_staff], home_township: {p}-t-1}}
  - {{person_id: {p}-p-3, name: 城三, roles: [township_secretary], home_township: {p}-t-1}}
  - {{person_id: {p}-p-4, name: 河一, roles: [township_member], home_township: {p}-t-2}}
  - {{person_id: {p}-p-5, name: 石一, roles: [supervision_staff], home_township: {p}-t-3}}
  - {{person_id: {p}-p-6, name: 石二, roles: [township_member], home_township: {p}-t-3}}
"""
CASE_MARKER_A, CASE_MARKER_B = "CASE-A-MARKER-7731", "CASE-B-MARKER-5519"
ISSUER, AUDIENCE = "test", "xiezuo"


@asynccontextmanager
async def _serving(servicer: JointCaseServicer) -> AsyncIterator[tuple[Any, TokenIssuer]]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.collaboration.v1.JointCaseService"],
        register=lambda server: jpb_grpc.add_JointCaseServiceServicer_to_server(servicer, server),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield (
            jpb_grpc.JointCaseServiceStub(channel),
            TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE),
        )
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


def _as(issuer: TokenIssuer, county: str, subject: str, *roles: str) -> Any:
    token = issuer.issue(
        Principal(subject=subject, roles=frozenset(roles), county_id=county, zone_ids=("z-1",))
    )
    return (("authorization", f"Bearer {token}"),)


def _forged(record: Any, key: Ed25519PrivateKey) -> tuple[str, tuple[bytes, bytes, list[Any]]]:
    sealed, event_id = seal(record, key)
    envelope = Envelope(
        id=event_id,
        type=record.event_type,
        source=source_of(record.from_county),
        time=datetime.now(UTC),
        county_id=record.county_id,
        zone_id=record.zone_id,
        data=sealed.model_dump_json().encode(),
        subject=record.subject_id(),
    )
    return event_id, (record.partition_key().encode(), envelope.data, envelope.headers())


async def test_a_joint_case_draws_each_share_from_its_own_pool_and_both_see_the_team(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    a, b = unique("county-a"), unique("county-b")
    pa, pb = unique("a"), unique("b")
    keys = {a: Ed25519PrivateKey.generate(), b: Ed25519PrivateKey.generate()}
    collaboration = await make_database("collaboration")
    network, sha = parse_network(network_yaml(keys))
    async with collaboration.transaction() as session:
        await import_network(session, network, sha256=sha, actor="test")
    staffing = await make_database("staffing")
    async with staffing.transaction() as session:
        await import_county(session, parse_county(REGISTRY.format(county=a, p=pa)), actor="t")
        await import_county(session, parse_county(REGISTRY.format(county=b, p=pb)), actor="t")
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    signing = CountySigningKeys(keys)
    letter_desk = LetterDesk(kinds=kinds, keys=signing)
    desk = JointCaseDesk(keys=signing)
    bootstrap = kafka.bootstrap_servers

    async with started_producer(bootstrap) as producer:
        records_in = EventConsumer(
            service=unique("collaboration"),
            database=collaboration,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        joint = JointRecordHandler(letter_desk)
        for record_class in (JointCaseOpened, JointCaseAccepted, JointShareDrawn):
            records_in.on(record_class, joint, replay_is_poison=True)
        records_in.on(AssistanceTeamDrawn, TeamDrawnHandler(desk))
        teams_in = EventConsumer(
            service=unique("staffing"),
            database=staffing,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        drawer = TeamDrawer(CountySecrets(b"k" * 32), [DEFAULT_DRAW_RULES])
        teams_in.on(AssistanceTeamRequested, AssistanceTeamHandler(drawer))
        await create_topics(
            bootstrap,
            LETTERS_TOPIC,
            TEAMS_TOPIC,
            DRAWS_TOPIC,
            records_in.dead_letter_topic,
            teams_in.dead_letter_topic,
        )
        async with (
            _relaying(collaboration, producer),
            _relaying(staffing, producer),
            running_broker(bootstrap, records_in),
            running_broker(bootstrap, teams_in),
            _serving(JointCaseServicer(collaboration, desk)) as (stub, issuer),
        ):
            leader_a = _as(issuer, a, "leader-a", "county_leadership")
            leader_b = _as(issuer, b, "leader-b", "county_leadership")
            # Only leadership opens a joint case.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.OpenJointCase(
                    jpb.OpenJointCaseRequest(
                        county_id=a,
                        partner_county_id=b,
                        case_id=CASE_MARKER_A,
                        subject_township_id=f"{pa}-t-1",
                    ),
                    metadata=_as(issuer, a, "officer-a", "case_officer"),
                )
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            opened = (
                await stub.OpenJointCase(
                    jpb.OpenJointCaseRequest(
                        county_id=a,
                        partner_county_id=b,
                        case_id=CASE_MARKER_A,
                        subject_township_id=f"{pa}-t-1",
                    ),
                    metadata=leader_a,
                )
            ).joint_case
            joint_id = opened.joint_id

            async def received() -> bool:
                async with collaboration.session() as session:
                    return await joint_cases.get(session, b, joint_id) is not None

            await wait_until(received, "B to verify and record the joint case")
            await stub.AcceptJointCase(
                jpb.AcceptJointCaseRequest(
                    joint_id=joint_id,
                    county_id=b,
                    case_id=CASE_MARKER_B,
                    subject_township_id=f"{pb}-t-1",
                ),
                metadata=leader_b,
            )

            async def whole_team() -> bool:
                async with collaboration.session() as session:
                    seen = [await view(session, county, joint_id) for county in (a, b)]
                return all(v is not None and v.own_members and v.other_members for v in seen)

            await wait_until(whole_team, "both shares drawn and exchanged")
            seen_a = (
                await stub.GetJointCase(
                    jpb.GetJointCaseRequest(joint_id=joint_id, county_id=a), metadata=leader_a
                )
            ).joint_case
            seen_b = (
                await stub.GetJointCase(
                    jpb.GetJointCaseRequest(joint_id=joint_id, county_id=b), metadata=leader_b
                )
            ).joint_case
            # A token of one county sees nothing of the other's side.
            with pytest.raises(grpc.aio.AioRpcError) as foreign:
                await stub.GetJointCase(
                    jpb.GetJointCaseRequest(joint_id=joint_id, county_id=b), metadata=leader_a
                )
            assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert seen_a.state == "accepted" and seen_b.state == "accepted"
            # Each share from its own county's pool, never from the subject's township there.
            assert all(p.startswith(f"{pa}-p-") for p in seen_a.own_member_ids)
            assert all(p.startswith(f"{pb}-p-") for p in seen_b.own_member_ids)
            subject_township = {f"{x}-p-{n}" for x in (pa, pb) for n in (1, 2, 3)}
            drawn = set(seen_a.own_member_ids) | set(seen_b.own_member_ids)
            assert len(drawn) == 4 and not subject_township & drawn
            # Both see the same joint team; each its own case id only.
            assert list(seen_a.partner_member_ids) == list(seen_b.own_member_ids)
            assert list(seen_b.partner_member_ids) == list(seen_a.own_member_ids)
            assert (seen_a.case_id, seen_b.case_id) == (CASE_MARKER_A, CASE_MARKER_B)

            # Each draw ran in its own county's registry and excluded its own subject township.
            for county, prefix, key in ((a, pa, f"{joint_id}-o"), (b, pb, f"{joint_id}-p")):
                async with staffing.session() as session:
                    row = (
                        await session.exec(
                            select(DrawRow).where(DrawRow.request_id == assistance_request_id(key))
                        )
                    ).one()
                record = record_of(row)
                assert row.county_id == county and row.filled
                assert {fact.person_id for fact in record.candidates} == {
                    f"{prefix}-p-{n}" for n in range(1, 7)
                }
                assert {
                    e.person_id
                    for e in record.exclusions
                    if e.reason is ExclusionReason.SUBJECT_TOWNSHIP
                } == {f"{prefix}-p-{n}" for n in (1, 2, 3)}

            # Marker scan: nothing of either case or township crosses, only ids of people.
            async with collaboration.session() as session:
                crossed = (
                    await session.exec(
                        select(OutboxMessage).where(
                            col(OutboxMessage.event_type).in_(
                                [
                                    JointCaseOpened.event_type,
                                    JointCaseAccepted.event_type,
                                    JointShareDrawn.event_type,
                                ]
                            )
                        )
                    )
                ).all()
            assert len(crossed) == 4
            for message in crossed:
                for marker in (CASE_MARKER_A, CASE_MARKER_B, f"{pa}-t-", f"{pb}-t-", "城"):
                    assert marker not in message.payload, (message.event_type, marker)

            # Forged joint records: a share signed by an attacker, a join under the wrong key.
            attacker = Ed25519PrivateKey.generate()
            now = datetime.now(UTC)
            forged = {
                "bad-signature": _forged(
                    JointShareDrawn(
                        county_id=a,
                        letter_id=joint_id,
                        from_county=b,
                        network_version=1,
                        person_ids=["intruder"],
                        drawn_at=now,
                    ),
                    attacker,
                ),
                "bad-signature ": _forged(
                    JointCaseOpened(
                        county_id=b,
                        letter_id=f"J-{uuid.uuid4().hex[:20]}",
                        from_county=a,
                        network_version=1,
                        opened_at=now,
                    ),
                    keys[b],
                ),
            }
            await produce(bootstrap, LETTERS_TOPIC, [raw for _, raw in forged.values()])
            expected = {event_id: reason.strip() for reason, (event_id, _) in forged.items()}

            async def all_parked() -> bool:
                parked = await read_records(
                    bootstrap, records_in.dead_letter_topic, 0, within=0.5, settle=0.5
                )
                return {dict(r.headers)["ce_id"].decode() for r in parked} >= set(expected)

            await wait_until(all_parked, "the forged joint records to be dead-lettered")
            parked = await read_records(bootstrap, records_in.dead_letter_topic, len(expected))
            errors = {
                dict(r.headers)["ce_id"].decode(): dict(r.headers)["x-dead-letter-error"].decode()
                for r in parked
            }
            for event_id, reason in expected.items():
                assert errors[event_id].startswith(reason), (reason, errors[event_id])
            # B's genuine share played again (same CloudEvent id): a replay, dead-lettered.
            original = next(
                r
                for r in await read_records(bootstrap, LETTERS_TOPIC, 1, settle=1.0)
                if dict(r.headers).get("ce_type") == JointShareDrawn.event_type.encode()
                and r.key == a.encode()
            )
            replayed_id = dict(original.headers)["ce_id"].decode()
            await produce(
                bootstrap, LETTERS_TOPIC, [(original.key, original.value, list(original.headers))]
            )

            async def replay_parked() -> bool:
                parked = await read_records(
                    bootstrap, records_in.dead_letter_topic, 0, within=0.5, settle=0.5
                )
                return any(
                    dict(r.headers)["ce_id"].decode() == replayed_id
                    and dict(r.headers)["x-dead-letter-error"].startswith(b"replayed")
                    for r in parked
                )

            await wait_until(replay_parked, "the replayed share to be dead-lettered")
            async with collaboration.session() as session:
                after = await view(session, a, joint_id)
            assert after is not None and "intruder" not in after.other_members
