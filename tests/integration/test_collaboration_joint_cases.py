"""A joint investigation (联合审查调查) over the real broker: one team from two counties' pools.

County A's leadership opens a joint case of a kind the network covers from its case, naming
county B, each county's share and the subject's township in A; B's leadership joins naming its
own case and the subject's township in B (or declines with a ground). Each county's staffing
draws its share from its own pool under its own exclusion rules; the shares cross as signed
records of person ids only, and each county sees the whole team and only its own case id,
also in its case file's history in cases. Closing releases both counties' shares from
workload. The city commission opens one between two counties with its own key. Forged and
replayed joint records are dead-lettered; a marker scan shows nothing beyond the joint
records' allowlist crosses. SQLite and PostgreSQL (make_database).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select
from xiezuo.collaboration.v1 import joint_cases_pb2 as jpb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc as jpb_grpc

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.handlers.joint_case import on_joint_case_noted
from services.cases.store.tables import CaseStepRow
from services.collaboration.api.joint_cases import JointCaseServicer
from services.collaboration.domain.joint_case import parse_joint_rules
from services.collaboration.domain.network import parse_network
from services.collaboration.handlers.joint_cases import JointRecordHandler, TeamDrawnHandler
from services.collaboration.joint_cases import JointCaseDesk, view
from services.collaboration.letters import seal, source_of
from services.collaboration.settings import DEFAULT_JOINT_RULES_FILE
from services.collaboration.signing_keys import CountySigningKeys, public_pem
from services.collaboration.store import joint_cases
from services.collaboration.store.network import import_network
from services.contracts.collaboration import (
    ANSWERS_TOPIC,
    LETTERS_TOPIC,
    TEAMS_TOPIC,
    AssistanceLetterClosed,
    AssistanceTeamRequested,
    JointCaseAccepted,
    JointCaseClosed,
    JointCaseDeclined,
    JointCaseNoted,
    JointCaseOpened,
    JointShareDrawn,
)
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.staffing import DRAWS_TOPIC, AssistanceTeamDrawn
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
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
from services.staffing.handlers.assistance_team import (
    AssistanceTeamHandler,
    on_assistance_letter_closed,
)
from services.staffing.secrets import CountySecrets
from services.staffing.store.casework import open_case_assignments
from services.staffing.store.draws import record_of
from services.staffing.store.registry import import_county
from services.staffing.store.tables import DrawRow
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
ISSUER, AUDIENCE = "test", "xiezuo"
# The only payload fields a joint-case record may carry across (docs/collaboration.md).
JOINT_ALLOWLIST = frozenset(
    {
        "county_id",
        "zone_id",
        "letter_id",
        "from_county",
        "network_version",
        "signature",
        "opened_at",
        "kind",
        "shares",
        "partner_county",
        "decided_at",
        "ground",
        "outcome",
        "closed_at",
        "person_ids",
        "drawn_at",
    }
)
JOINT_RECORDS = (
    JointCaseOpened,
    JointCaseAccepted,
    JointCaseDeclined,
    JointCaseClosed,
    JointShareDrawn,
)
CITY = "city-xl"


def _pem_block(pem: str, indent: str) -> str:
    return "".join(f"{indent}{line}\n" for line in pem.strip().splitlines())


def _network(keys: dict[str, Ed25519PrivateKey], city_key: Ed25519PrivateKey | None) -> str:
    """Two counties agreeing on letters and on discipline/duty-crime joint cases."""
    counties = "".join(
        f"  - county_id: {county}\n    name: 县{index}\n    public_key: |\n"
        + _pem_block(public_pem(key), "      ")
        for index, (county, key) in enumerate(keys.items())
    )
    city = f"city_commission:\n  id: {CITY}\n  name: 西岭市纪委监委\n"
    if city_key is not None:
        city += "  public_key: |\n" + _pem_block(public_pem(city_key), "    ")
    return (
        "network: xl-network\nversion: 1\n"
        + city
        + f"counties:\n{counties}"
        + f"agreements:\n  - counties: [{', '.join(keys)}]\n"
        + "    kinds: [verify_fact, other]\n"
        + "    joint_kinds: [discipline, duty_crime]\n"
    )


async def _register_case(db: Database, county: str, case_id: str) -> None:
    """A case file in `county`'s cases, as its ClueRegistered handler makes one."""
    now = datetime.now(UTC)
    event = ClueRegistered(
        county_id=county,
        zone_id="z-1",
        clue_id=case_id,
        report_id=f"r-{case_id}",
        township_id="t-1",
        channel="letter",
        allegation_categories=["embezzlement"],
        subject=ReportedSubject(
            name="王某", post="secretary", unit="Hexi", township_id="t-1", cadre_level="village"
        ),
        real_name=False,
        received_at=now,
        registered_at=now,
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/intake",
        time=now,
        county_id=county,
        zone_id="z-1",
        data=b"{}",
    )
    async with db.transaction() as session:
        await ClueRegisteredHandler([DEFAULT_RULES])(session, event, envelope)


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


@dataclass
class World:
    """Two counties (and the city) on one broker: collaboration, staffing and cases wired."""

    a: str
    b: str
    pa: str
    pb: str
    keys: dict[str, Ed25519PrivateKey]
    collaboration: Database
    staffing: Database
    cases: Database
    stub: Any
    issuer: TokenIssuer
    dead_letters: str
    bootstrap: str

    def leader(self, county: str) -> Any:
        return _as(self.issuer, county, f"leader-{county}", "county_leadership")

    async def open_assignments(self, draw_key: str) -> int:
        async with self.staffing.session() as session:
            return len(await open_case_assignments(session, draw_key))

    async def history(self, county: str, case_id: str) -> list[CaseStepRow]:
        async with self.cases.session() as session:
            rows = await session.exec(
                select(CaseStepRow)
                .where(col(CaseStepRow.case_id) == case_id)
                .where(col(CaseStepRow.action).startswith("joint_case_"))
                .order_by(col(CaseStepRow.at))
            )
            return list(rows.all())

    async def dead_lettered(self) -> dict[str, str]:
        parked = await read_records(self.bootstrap, self.dead_letters, 0, within=0.5, settle=0.5)
        return {
            dict(r.headers)["ce_id"].decode(): dict(r.headers)["x-dead-letter-error"].decode()
            for r in parked
        }


@asynccontextmanager
async def _world(
    kafka: KafkaNode, make_database: MakeDatabase, *, with_city: bool = False
) -> AsyncIterator[World]:
    a, b = unique("county-a"), unique("county-b")
    pa, pb = unique("a"), unique("b")
    keys = {a: Ed25519PrivateKey.generate(), b: Ed25519PrivateKey.generate()}
    city_key = Ed25519PrivateKey.generate()
    collaboration = await make_database("collaboration")
    network, sha = parse_network(_network(keys, city_key if with_city else None))
    async with collaboration.transaction() as session:
        await import_network(session, network, sha256=sha, actor="test")
    staffing = await make_database("staffing")
    async with staffing.transaction() as session:
        await import_county(session, parse_county(REGISTRY.format(county=a, p=pa)), actor="t")
        await import_county(session, parse_county(REGISTRY.format(county=b, p=pb)), actor="t")
    cases = await make_database("cases")
    signing = CountySigningKeys({**keys, **({CITY: city_key} if with_city else {})})
    rules = parse_joint_rules(DEFAULT_JOINT_RULES_FILE.read_text(encoding="utf-8"))
    desk = JointCaseDesk(keys=signing, rules=rules)
    bootstrap = kafka.bootstrap_servers
    async with started_producer(bootstrap) as producer:
        records_in = EventConsumer(
            service=unique("collaboration"),
            database=collaboration,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        joint = JointRecordHandler(desk)
        for record_class in JOINT_RECORDS:
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
        teams_in.on(AssistanceLetterClosed, on_assistance_letter_closed)
        history_in = EventConsumer(
            service=unique("cases"),
            database=cases,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        history_in.on(JointCaseNoted, on_joint_case_noted)
        await create_topics(
            bootstrap,
            LETTERS_TOPIC,
            TEAMS_TOPIC,
            DRAWS_TOPIC,
            ANSWERS_TOPIC,
            records_in.dead_letter_topic,
            teams_in.dead_letter_topic,
            history_in.dead_letter_topic,
        )
        async with (
            _relaying(collaboration, producer),
            _relaying(staffing, producer),
            running_broker(bootstrap, records_in),
            running_broker(bootstrap, teams_in),
            running_broker(bootstrap, history_in),
            _serving(JointCaseServicer(collaboration, desk)) as (stub, issuer),
        ):
            yield World(
                a=a,
                b=b,
                pa=pa,
                pb=pb,
                keys={**keys, CITY: city_key},
                collaboration=collaboration,
                staffing=staffing,
                cases=cases,
                stub=stub,
                issuer=issuer,
                dead_letters=records_in.dead_letter_topic,
                bootstrap=bootstrap,
            )


async def test_a_joint_case_draws_from_both_pools_shows_in_both_case_files_and_frees_both_on_close(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    async with _world(kafka, make_database) as w:
        a, b, pa, pb, stub = w.a, w.b, w.pa, w.pb, w.stub
        case_a, case_b = unique("CASE-A-MARKER"), unique("CASE-B-MARKER")
        await _register_case(w.cases, a, case_a)
        await _register_case(w.cases, b, case_b)
        opening = jpb.OpenJointCaseRequest(
            idempotency_key=unique("k"),
            county_id=a,
            partner_county_id=b,
            case_id=case_a,
            subject_township_id=f"{pa}-t-1",
            kind="discipline",
            own_share=2,
            partner_share=3,
        )
        # Only leadership opens a joint case.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.OpenJointCase(
                opening, metadata=_as(w.issuer, a, "officer-a", "case_officer")
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A kind no agreement covers, and a share outside the rules: refused, field named.
        for bad, field in (
            (jpb.OpenJointCaseRequest(kind="duty_violation"), "kind"),
            (jpb.OpenJointCaseRequest(kind="discipline", partner_share=9), "shares"),
            (jpb.OpenJointCaseRequest(kind="embezzlement"), "kind"),
        ):
            request = jpb.OpenJointCaseRequest()
            request.CopyFrom(opening)
            request.MergeFrom(bad)
            request.idempotency_key = unique("k")
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await stub.OpenJointCase(request, metadata=w.leader(a))
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (invalid.value.details() or ""), invalid.value.details()
        opened = (await stub.OpenJointCase(opening, metadata=w.leader(a))).joint_case
        joint_id = opened.joint_id
        assert (opened.kind, opened.own_share, opened.partner_share) == ("discipline", 2, 3)
        # The same key again: the same joint case, nothing sent twice.
        again = (await stub.OpenJointCase(opening, metadata=w.leader(a))).joint_case
        assert again.joint_id == joint_id

        async def received() -> bool:
            async with w.collaboration.session() as session:
                return await joint_cases.get(session, b, joint_id) is not None

        await wait_until(received, "B to verify and record the joint case")
        await stub.AcceptJointCase(
            jpb.AcceptJointCaseRequest(
                joint_id=joint_id,
                county_id=b,
                case_id=case_b,
                subject_township_id=f"{pb}-t-1",
            ),
            metadata=w.leader(b),
        )

        async def whole_team() -> bool:
            async with w.collaboration.session() as session:
                seen = [await view(session, county, joint_id) for county in (a, b)]
            return all(v is not None and v.own_members and v.other_members for v in seen)

        await wait_until(whole_team, "both shares drawn and exchanged")
        seen_a = (
            await stub.GetJointCase(
                jpb.GetJointCaseRequest(joint_id=joint_id, county_id=a), metadata=w.leader(a)
            )
        ).joint_case
        seen_b = (
            await stub.GetJointCase(
                jpb.GetJointCaseRequest(joint_id=joint_id, county_id=b), metadata=w.leader(b)
            )
        ).joint_case
        # A token of one county sees nothing of the other's side.
        with pytest.raises(grpc.aio.AioRpcError) as foreign:
            await stub.GetJointCase(
                jpb.GetJointCaseRequest(joint_id=joint_id, county_id=b), metadata=w.leader(a)
            )
        assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert seen_a.state == "accepted" and seen_b.state == "accepted"
        assert seen_a.partner_joined and seen_b.kind == "discipline"
        # Each share from its own county's pool, of the size asked, never from the subject's
        # township there.
        assert len(seen_a.own_member_ids) == 2 and len(seen_b.own_member_ids) == 3
        assert all(p.startswith(f"{pa}-p-") for p in seen_a.own_member_ids)
        assert all(p.startswith(f"{pb}-p-") for p in seen_b.own_member_ids)
        subject_township = {f"{x}-p-{n}" for x in (pa, pb) for n in (1, 2, 3)}
        drawn = set(seen_a.own_member_ids) | set(seen_b.own_member_ids)
        assert len(drawn) == 5 and not subject_township & drawn
        # Both see the same joint team; each its own case id only.
        assert list(seen_a.partner_member_ids) == list(seen_b.own_member_ids)
        assert list(seen_b.partner_member_ids) == list(seen_a.own_member_ids)
        assert (seen_a.case_id, seen_b.case_id) == (case_a, case_b)
        # Each draw ran in its own county's registry and excluded its own subject township.
        for county, prefix, key in ((a, pa, f"{joint_id}-o"), (b, pb, f"{joint_id}-p")):
            async with w.staffing.session() as session:
                row = (
                    await session.exec(
                        select(DrawRow).where(DrawRow.request_id == assistance_request_id(key))
                    )
                ).one()
            record = record_of(row)
            assert row.county_id == county and row.filled
            assert {
                e.person_id
                for e in record.exclusions
                if e.reason is ExclusionReason.SUBJECT_TOWNSHIP
            } == {f"{prefix}-p-{n}" for n in (1, 2, 3)}
            assert await w.open_assignments(key) > 0

        # The team is visible from each county's own case file: its history names the joint
        # case, the other county and both shares; never the other county's case id.
        async def team_in_both_files() -> bool:
            found = [
                any(s.action == "joint_case_team_drawn" for s in await w.history(c, case))
                for c, case in ((a, case_a), (b, case_b))
            ]
            return all(found)

        await wait_until(team_in_both_files, "the joint team in both case files' history")
        for county, case, other_case, own in (
            (a, case_a, case_b, seen_a),
            (b, case_b, case_a, seen_b),
        ):
            steps = await w.history(county, case)
            team = json.loads(next(s for s in steps if s.action == "joint_case_team_drawn").detail)
            assert team["joint_id"] == joint_id
            assert team["own_member_ids"] == list(own.own_member_ids)
            assert team["partner_member_ids"] == list(own.partner_member_ids)
            assert all(other_case not in s.detail for s in steps)

        # Closed by B's leadership with an outcome: both counties' shares leave workload.
        with pytest.raises(grpc.aio.AioRpcError) as unknown_outcome:
            await stub.CloseJointCase(
                jpb.CloseJointCaseRequest(joint_id=joint_id, county_id=b, outcome="done"),
                metadata=w.leader(b),
            )
        assert unknown_outcome.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        closed = (
            await stub.CloseJointCase(
                jpb.CloseJointCaseRequest(joint_id=joint_id, county_id=b, outcome="concluded"),
                metadata=w.leader(b),
            )
        ).joint_case
        assert closed.state == "closed" and closed.closed_by == b

        async def both_released() -> bool:
            counts = [await w.open_assignments(f"{joint_id}-{s}") for s in ("o", "p")]
            return counts == [0, 0]

        await wait_until(both_released, "both counties' shares released from workload")
        async with w.collaboration.session() as session:
            after_a = await view(session, a, joint_id)
        assert after_a is not None and after_a.state == "closed"
        assert (after_a.outcome, after_a.closed_by) == ("concluded", b)
        # Closing again is refused: it is closed on both sides.
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await stub.CloseJointCase(
                jpb.CloseJointCaseRequest(joint_id=joint_id, county_id=a, outcome="concluded"),
                metadata=w.leader(a),
            )
        assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        async def closed_in_both_files() -> bool:
            found = [
                any(s.action == "joint_case_closed" for s in await w.history(c, case))
                for c, case in ((a, case_a), (b, case_b))
            ]
            return all(found)

        await wait_until(closed_in_both_files, "the close in both case files' history")
        listed = (
            await stub.ListJointCases(
                jpb.ListJointCasesRequest(county_id=a, state="closed"), metadata=w.leader(a)
            )
        ).joint_cases
        assert [j.joint_id for j in listed] == [joint_id]

        # Every step in both counties' audit chains.
        async with w.collaboration.session() as session:
            audited = (
                await session.exec(select(AuditEntry).where(col(AuditEntry.record_id) == joint_id))
            ).all()
        actions = {(e.county_id, e.action) for e in audited}
        assert {
            (a, "joint_case.opened"),
            (a, "joint_case.joined"),
            (a, "joint_case.share_drawn"),
            (a, "joint_case.share_received"),
            (a, "joint_case.close_received"),
            (b, "joint_case.received"),
            (b, "joint_case.accepted"),
            (b, "joint_case.share_drawn"),
            (b, "joint_case.share_received"),
            (b, "joint_case.closed"),
        } <= actions

        # Marker scan: every joint record that crossed carries only allowlisted fields and
        # nothing of either case, township or person's name.
        async with w.collaboration.session() as session:
            crossed = (
                await session.exec(
                    select(OutboxMessage).where(
                        col(OutboxMessage.event_type).in_([r.event_type for r in JOINT_RECORDS])
                    )
                )
            ).all()
        assert len(crossed) == 5  # opened, accepted, two shares, closed
        for message in crossed:
            assert set(json.loads(message.payload)) <= JOINT_ALLOWLIST, message.event_type
            for marker in (case_a, case_b, f"{pa}-t-", f"{pb}-t-", "城", "王某"):
                assert marker not in message.payload, (message.event_type, marker)

        # Forged joint records: a share signed by an attacker, an opening under the wrong key,
        # a close from a county that is not in the joint case.
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
                    kind="discipline",
                    shares={a: 2, b: 2},
                ),
                w.keys[b],
            ),
            "unsigned": _forged(
                JointCaseClosed(
                    county_id=a,
                    letter_id=joint_id,
                    from_county=b,
                    network_version=1,
                    outcome="withdrawn",
                    closed_at=now,
                ),
                w.keys[b],
            ),
        }
        # The unsigned one: the same record with its signature stripped.
        unsigned_id, (record_key, value, headers) = forged["unsigned"]
        payload = json.loads(value)
        payload["signature"] = ""
        forged["unsigned"] = (unsigned_id, (record_key, json.dumps(payload).encode(), headers))
        await produce(w.bootstrap, LETTERS_TOPIC, [raw for _, raw in forged.values()])
        expected = {event_id: reason.strip() for reason, (event_id, _) in forged.items()}

        async def all_parked() -> bool:
            return set(await w.dead_lettered()) >= set(expected)

        await wait_until(all_parked, "the forged joint records to be dead-lettered")
        errors = await w.dead_lettered()
        for event_id, reason in expected.items():
            assert errors[event_id].startswith(reason), (reason, errors[event_id])
        # B's genuine close played again (same CloudEvent id): a replay, dead-lettered.
        original = next(
            r
            for r in await read_records(w.bootstrap, LETTERS_TOPIC, 1, settle=1.0)
            if dict(r.headers).get("ce_type") == JointCaseClosed.event_type.encode()
            and r.key == a.encode()
            and dict(r.headers)["ce_id"].decode() not in expected
        )
        replayed_id = dict(original.headers)["ce_id"].decode()
        await produce(
            w.bootstrap, LETTERS_TOPIC, [(original.key, original.value, list(original.headers))]
        )

        async def replay_parked() -> bool:
            return (await w.dead_lettered()).get(replayed_id, "").startswith("replayed")

        await wait_until(replay_parked, "the replayed close to be dead-lettered")
        async with w.collaboration.session() as session:
            final = await view(session, a, joint_id)
        assert final is not None and "intruder" not in final.other_members
        assert final.outcome == "concluded"


async def test_a_declined_joint_case_frees_the_openers_share_and_says_why_in_its_case_file(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    async with _world(kafka, make_database) as w:
        case_a = unique("CASE-A")
        await _register_case(w.cases, w.a, case_a)
        opened = (
            await w.stub.OpenJointCase(
                jpb.OpenJointCaseRequest(
                    idempotency_key=unique("k"),
                    county_id=w.a,
                    partner_county_id=w.b,
                    case_id=case_a,
                    subject_township_id=f"{w.pa}-t-1",
                    kind="duty_crime",
                ),
                metadata=w.leader(w.a),
            )
        ).joint_case
        joint_id = opened.joint_id
        # The kind's default share (duty_crime: 3 per county).
        assert (opened.own_share, opened.partner_share) == (3, 3)

        async def received() -> bool:
            async with w.collaboration.session() as session:
                return await joint_cases.get(session, w.b, joint_id) is not None

        await wait_until(received, "B to record the joint case")
        with pytest.raises(grpc.aio.AioRpcError) as groundless:
            await w.stub.DeclineJointCase(
                jpb.DeclineJointCaseRequest(joint_id=joint_id, county_id=w.b, ground=" "),
                metadata=w.leader(w.b),
            )
        assert groundless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The opener cannot decline its own joint case.
        with pytest.raises(grpc.aio.AioRpcError) as own:
            await w.stub.DeclineJointCase(
                jpb.DeclineJointCaseRequest(joint_id=joint_id, county_id=w.a, ground="x"),
                metadata=w.leader(w.a),
            )
        assert own.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        ground = "本县正在办理的关联案件人员已满，无法抽调"
        declined = (
            await w.stub.DeclineJointCase(
                jpb.DeclineJointCaseRequest(joint_id=joint_id, county_id=w.b, ground=ground),
                metadata=w.leader(w.b),
            )
        ).joint_case
        assert declined.state == "declined" and declined.decline_ground == ground

        async def a_released() -> bool:
            async with w.collaboration.session() as session:
                seen = await view(session, w.a, joint_id)
            drawn = seen is not None and bool(seen.own_members)
            return (
                seen is not None
                and seen.state == "declined"
                and drawn
                and await w.open_assignments(f"{joint_id}-o") == 0
            )

        await wait_until(a_released, "A to learn of the decline and free its share")
        async with w.collaboration.session() as session:
            seen_a = await view(session, w.a, joint_id)
        assert seen_a is not None and seen_a.decline_ground == ground
        # B never drew (it did not join): nothing of B's was asked of its staffing.
        async with w.staffing.session() as session:
            b_draws = (
                await session.exec(
                    select(DrawRow).where(
                        DrawRow.request_id == assistance_request_id(f"{joint_id}-p")
                    )
                )
            ).all()
        assert not b_draws

        async def declined_in_file() -> bool:
            steps = await w.history(w.a, case_a)
            return any(s.action == "joint_case_declined" for s in steps)

        await wait_until(declined_in_file, "the decline in A's case file")
        steps = await w.history(w.a, case_a)
        assert [s.action for s in steps][:1] == ["joint_case_opened"]
        assert json.loads(steps[-1].detail)["ground"] == ground


async def test_the_city_commission_opens_a_joint_case_between_two_counties_with_its_own_key(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    async with _world(kafka, make_database, with_city=True) as w:
        city = _as(w.issuer, CITY, "city-officer", "city_commission")
        request = jpb.OpenCityJointCaseRequest(
            idempotency_key=unique("k"),
            city_id=CITY,
            first_county_id=w.a,
            second_county_id=w.b,
            kind="discipline",
            first_share=1,
            second_share=3,
        )
        # A county's leadership does not speak for the city.
        with pytest.raises(grpc.aio.AioRpcError) as not_city:
            await w.stub.OpenCityJointCase(request, metadata=w.leader(w.a))
        assert not_city.value.code() == grpc.StatusCode.PERMISSION_DENIED
        opened = (await w.stub.OpenCityJointCase(request, metadata=city)).joint_case
        joint_id = opened.joint_id
        assert (opened.role, opened.opened_by, opened.case_id) == ("city", CITY, "")
        assert (opened.partner_county_id, opened.second_county_id) == (w.a, w.b)

        async def both_received() -> bool:
            async with w.collaboration.session() as session:
                rows = [await joint_cases.get(session, c, joint_id) for c in (w.a, w.b)]
            return all(row is not None for row in rows)

        await wait_until(both_received, "both counties to verify the city's record")
        for county, prefix, other in ((w.a, w.pa, w.b), (w.b, w.pb, w.a)):
            joined = (
                await w.stub.AcceptJointCase(
                    jpb.AcceptJointCaseRequest(
                        joint_id=joint_id,
                        county_id=county,
                        case_id=unique("case"),
                        subject_township_id=f"{prefix}-t-1",
                    ),
                    metadata=w.leader(county),
                )
            ).joint_case
            assert (joined.role, joined.opened_by, joined.partner_county_id) == (
                "partner",
                CITY,
                other,
            )

        async def whole_team() -> bool:
            async with w.collaboration.session() as session:
                seen = [await view(session, c, joint_id) for c in (w.a, w.b)]
            return all(
                v is not None and v.own_members and v.other_members and v.other_joined for v in seen
            )

        await wait_until(whole_team, "both shares drawn and exchanged")
        async with w.collaboration.session() as session:
            seen_a = await view(session, w.a, joint_id)
            seen_b = await view(session, w.b, joint_id)
        assert seen_a is not None and seen_b is not None
        assert len(seen_a.own_members) == 1 and len(seen_b.own_members) == 3
        assert seen_a.other_members == seen_b.own_members
        # The city's view: the pair, the kind and the shares; no case and no team.
        city_view = (
            await w.stub.GetJointCase(
                jpb.GetJointCaseRequest(joint_id=joint_id, county_id=CITY), metadata=city
            )
        ).joint_case
        assert city_view.case_id == "" and not city_view.own_member_ids
        # A city record under a county's key, and one the city may not send: dead-lettered.
        now = datetime.now(UTC)
        forged = {
            "bad-signature": _forged(
                JointCaseOpened(
                    county_id=w.a,
                    letter_id=f"J-{uuid.uuid4().hex[:20]}",
                    from_county=CITY,
                    network_version=1,
                    opened_at=now,
                    kind="discipline",
                    shares={w.a: 2, w.b: 2},
                    partner_county=w.b,
                ),
                w.keys[w.b],
            ),
            "misaddressed": _forged(
                JointCaseClosed(
                    county_id=w.a,
                    letter_id=joint_id,
                    from_county=CITY,
                    network_version=1,
                    outcome="withdrawn",
                    closed_at=now,
                ),
                w.keys[CITY],
            ),
        }
        await produce(w.bootstrap, LETTERS_TOPIC, [raw for _, raw in forged.values()])
        expected = {event_id: reason for reason, (event_id, _) in forged.items()}

        async def all_parked() -> bool:
            return set(await w.dead_lettered()) >= set(expected)

        await wait_until(all_parked, "the forged city records to be dead-lettered")
        errors = await w.dead_lettered()
        for event_id, reason in expected.items():
            assert errors[event_id].startswith(reason), (reason, errors[event_id])
        async with w.collaboration.session() as session:
            still = await view(session, w.a, joint_id)
        assert still is not None and still.state == "accepted"
