"""Two counties on one real broker: a letter approved, sent, verified, accepted, answered;
forged, replayed and misaddressed records dead-lettered with nothing changed; a marker scan of
every cross-county record for a reporter's identity and fields outside the allowlist.

One collaboration deployment speaks for both counties (their two signing keys), as every
county shares one broker locally; each county's rows, audit chain and tokens stay its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import generate_latest
from sqlmodel import col, select
from xiezuo.collaboration.v1 import collaboration_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc as pb_grpc

from services.collaboration.api.servicer import CollaborationServicer
from services.collaboration.domain.letter_kinds import parse_letter_kinds
from services.collaboration.domain.network import parse_network
from services.collaboration.domain.signing import sign, signed_bytes
from services.collaboration.handlers.letters import LetterRecordHandler
from services.collaboration.letters import LetterDesk, seal, source_of
from services.collaboration.metrics import LetterMetrics
from services.collaboration.settings import DEFAULT_LETTER_KINDS_FILE
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store.network import import_network
from services.collaboration.store.received_records import ReceivedRecordRow, ReceivedRecords
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import (
    ANSWERS_TOPIC,
    LETTERS_TOPIC,
    AssistanceAnswered,
    CrossCountyRecord,
    LetterAccepted,
    LetterAnswered,
    LetterDeclined,
    LetterSent,
)
from services.runtime.audit import AuditEntry
from services.runtime.backentry import BACK_ENTRY_ROLE
from services.runtime.db import Database, as_utc
from services.runtime.envelope import Envelope
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.outbox import OutboxRelay
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from tests.collaboration_network import network_yaml
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    count_rows,
    create_topics,
    produce,
    read_records,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

ISSUER, AUDIENCE = "test", "xiezuo"
# A reporter's identity as it would look in a report: it must never reach another county.
REPORTER_MARKER = "举报人张三丰-13800138000"
CITY = "city-lz"
_DAY = timedelta(days=1)


@dataclass
class Counties:
    """The running deployment, its database and the two counties' keys and callers."""

    stub: Any
    issuer: TokenIssuer
    database: Database
    a: str
    b: str
    keys: dict[str, Ed25519PrivateKey]
    dead_letter_topic: str
    bootstrap: str
    metrics: LetterMetrics

    def steps(self, step: str) -> float:
        """How many times A→B letters (verify_fact) took `step`, on /metrics."""
        labels = {"from_county": self.a, "to_county": self.b, "kind": "verify_fact", "step": step}
        value = self.metrics.registry.get_sample_value(
            "xiezuo_collaboration_letter_steps_total", labels
        )
        return value or 0.0

    def as_(self, county: str, subject: str, *roles: str) -> Any:
        token = self.issuer.issue(
            Principal(subject=subject, roles=frozenset(roles), county_id=county, zone_ids=("z-1",))
        )
        return (("authorization", f"Bearer {token}"),)


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


@pytest.fixture
async def counties(kafka: KafkaNode, make_database: MakeDatabase) -> AsyncIterator[Counties]:
    """Counties A and B (fresh ids per run), the network imported, everything running."""
    a, b = unique("county-a"), unique("county-b")
    keys = {a: Ed25519PrivateKey.generate(), b: Ed25519PrivateKey.generate()}
    database = await make_database("collaboration")
    network, sha = parse_network(network_yaml(keys, city=CITY))
    async with database.transaction() as session:
        await import_network(session, network, sha256=sha, actor="test")
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    desk = LetterDesk(kinds=kinds, keys=CountySigningKeys(keys))
    bootstrap = kafka.bootstrap_servers
    async with started_producer(bootstrap) as producer:
        consumer = EventConsumer(
            service=unique("collaboration"),
            database=database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
            batch_size=10,
        )
        metrics = LetterMetrics()
        receiver = LetterRecordHandler(desk, metrics)
        # As the service wires it (collaboration/app.py): a redelivery is told from a replay.
        received = ReceivedRecords()
        for record in (LetterSent, LetterAccepted, LetterDeclined, LetterAnswered):
            consumer.on(record, receiver, replay_is_poison=True, ledger=received)
        await create_topics(
            bootstrap, LETTERS_TOPIC, ANSWERS_TOPIC, consumer.dead_letter_topic, partitions=3
        )
        relay = OutboxRelay(database, producer, idle_poll_seconds=0.2)
        relay_task = asyncio.create_task(relay.run())
        try:
            async with (
                running_broker(bootstrap, consumer),
                _serving(CollaborationServicer(database, desk, metrics, back_entry_days=400)) as (
                    stub,
                    issuer,
                ),
            ):
                yield Counties(
                    stub,
                    issuer,
                    database,
                    a,
                    b,
                    keys,
                    consumer.dead_letter_topic,
                    bootstrap,
                    metrics,
                )
        finally:
            await relay.stop()
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task


async def _row(database: Database, county: str, letter_id: str) -> LetterRow | None:
    async with database.session() as session:
        return await session.get(LetterRow, (county, letter_id))


async def _state(database: Database, county: str, letter_id: str) -> str | None:
    row = await _row(database, county, letter_id)
    return None if row is None else row.state


async def _audit_actions(database: Database, county: str) -> list[str]:
    async with database.session() as session:
        rows = await session.exec(
            select(AuditEntry.action)
            .where(col(AuditEntry.county_id) == county)
            .order_by(col(AuditEntry.seq))
        )
        return list(rows.all())


def _request(c: Counties, **overrides: Any) -> pb.RequestLetterRequest:
    fields: dict[str, Any] = {
        "idempotency_key": uuid.uuid4().hex,
        "county_id": c.a,
        "zone_id": "z-1",
        "case_id": "case-7",
        "target_county_id": c.b,
        "kind": pb.LETTER_KIND_VERIFY_FACT,
        "question": "请核实王某2025年是否在贵县某建筑公司领取报酬",
        "fields": {"subject_name": "王某", "subject_employer": "某建筑公司"},
        "excerpt": "经查，王某于2025年3月……",
    }
    fields.update(overrides)
    return pb.RequestLetterRequest(**fields)


async def _letter_flow(c: Counties) -> str:
    """A letter from A to B, approved, verified, accepted and answered; its id."""
    officer_a = c.as_(c.a, "officer-a", "case_officer")
    leader_a = c.as_(c.a, "leader-a", "county_leadership")
    drafted = (await c.stub.RequestLetter(_request(c), metadata=officer_a)).letter
    letter_id = drafted.letter_id
    assert drafted.state == pb.LETTER_STATE_AWAITING_APPROVAL
    # Due in 10 working days (verify_fact) on B's calendar: two weekends at least, so never
    # sooner than 12 days (asked on a Sunday; 13 on a Saturday, 14 on a working day).
    assert (date.fromisoformat(drafted.due_date) - datetime.now(UTC).date()).days >= 12
    # Only leadership approves.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await c.stub.ApproveLetter(
            pb.ApproveLetterRequest(idempotency_key="k", letter_id=letter_id), metadata=officer_a
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    sent = await c.stub.ApproveLetter(
        pb.ApproveLetterRequest(idempotency_key="k-approve", letter_id=letter_id),
        metadata=leader_a,
    )
    assert sent.letter.state == pb.LETTER_STATE_SENT

    async def received() -> bool:
        return await _state(c.database, c.b, letter_id) == "received"

    await wait_until(received, "B to verify and record the letter")
    inbound = await _row(c.database, c.b, letter_id)
    assert inbound is not None and inbound.case_id is None and inbound.zone_id is None
    assert json.loads(inbound.fields_json) == {
        "subject_name": "王某",
        "subject_employer": "某建筑公司",
    }

    leader_b = c.as_(c.b, "leader-b", "county_leadership")
    await c.stub.DecideLetter(
        pb.DecideLetterRequest(idempotency_key="k-accept", letter_id=letter_id, accept=True),
        metadata=leader_b,
    )

    async def accepted() -> bool:
        return await _state(c.database, c.a, letter_id) == "accepted"

    await wait_until(accepted, "A to learn the letter was accepted")
    officer_b = c.as_(c.b, "officer-b", "case_officer")
    await c.stub.AnswerLetter(
        pb.AnswerLetterRequest(
            idempotency_key="k-answer",
            letter_id=letter_id,
            findings="经核实，王某2025年4月至9月在该公司领取报酬共计3.6万元",
            attachments=[
                pb.Attachment(
                    name="工资发放记录.pdf",
                    sha256="ab" * 32,
                    size_bytes=120_000,
                    media_type="application/pdf",
                )
            ],
        ),
        metadata=officer_b,
    )

    async def answered() -> bool:
        return await _state(c.database, c.a, letter_id) == "answered"

    await wait_until(answered, "A to record the answer")
    return letter_id


async def test_a_letter_is_approved_sent_verified_accepted_and_answered(counties: Counties) -> None:
    c = counties
    letter_id = await _letter_flow(c)
    officer_a = c.as_(c.a, "officer-a", "case_officer")
    shown = (
        await c.stub.GetLetter(pb.GetLetterRequest(letter_id=letter_id), metadata=officer_a)
    ).letter
    assert shown.case_id == "case-7" and shown.findings.startswith("经核实")
    assert [a.name for a in shown.attachments] == ["工资发放记录.pdf"]
    # The answer is published for case-7's history in A.
    async with c.database.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.event_type) == AssistanceAnswered.event_type,
                    col(OutboxMessage.county_id) == c.a,
                )
            )
        ).all()
    assert [json.loads(r.payload)["case_id"] for r in rows] == ["case-7"]
    # Every send, receipt, decision and answer is in both counties' audit logs.
    assert await _audit_actions(c.database, c.a) == [
        "network.imported",
        "letter.requested",
        "letter.sent",
        "letter.accept_received",
        "letter.answer_received",
    ]
    assert await _audit_actions(c.database, c.b) == [
        "network.imported",
        "letter.received",
        "letter.accepted",
        "letter.answered",
    ]
    # Observed per county pair and kind: each side counts its steps; approval → answer timed.
    for step in ("sent", "received", "accepted", "accept_received", "answered", "answer_received"):
        assert c.steps(step) == 1, step
    timed = c.metrics.registry.get_sample_value(
        "xiezuo_collaboration_approval_to_answer_seconds_count",
        {"from_county": c.a, "to_county": c.b, "kind": "verify_fact"},
    )
    assert timed == 1
    # The city commission sees the letter, but nothing of the case.
    city = c.issuer.issue(
        Principal(subject="city-1", roles=frozenset({"city_commission"}), county_id=CITY)
    )
    view = (
        await c.stub.GetLetter(
            pb.GetLetterRequest(letter_id=letter_id),
            metadata=(("authorization", f"Bearer {city}"),),
        )
    ).letter
    assert view.state == pb.LETTER_STATE_ANSWERED and view.county_id == c.a
    assert (view.case_id, view.question, view.findings, dict(view.fields)) == ("", "", "", {})
    # ... and lists every member's letters in pages, still without the case.
    second = (await c.stub.RequestLetter(_request(c), metadata=officer_a)).letter
    city_meta = (("authorization", f"Bearer {city}"),)
    first_page = await c.stub.ListLetters(pb.ListLettersRequest(page_size=1), metadata=city_meta)
    rest = await c.stub.ListLetters(
        pb.ListLettersRequest(page_size=1, page_token=first_page.next_page_token),
        metadata=city_meta,
    )
    listed = [*first_page.letters, *rest.letters]
    assert [x.letter_id for x in listed] == [letter_id, second.letter_id]
    assert rest.next_page_token == "" and all(x.case_id == "" for x in listed)
    # A township-level reader of another zone does not see A's letters in a list.
    other_zone = c.issuer.issue(
        Principal(
            subject="officer-z2",
            roles=frozenset({"case_officer"}),
            county_id=c.a,
            zone_ids=("z-2",),
        )
    )
    hidden = await c.stub.ListLetters(
        pb.ListLettersRequest(county_id=c.a),
        metadata=(("authorization", f"Bearer {other_zone}"),),
    )
    assert list(hidden.letters) == []
    # B cannot read A's side (it sees its own, without the case).
    officer_b = c.as_(c.b, "officer-b", "case_officer")
    b_side = (
        await c.stub.GetLetter(pb.GetLetterRequest(letter_id=letter_id), metadata=officer_b)
    ).letter
    assert b_side.county_id == c.b and b_side.case_id == ""


async def test_fields_outside_the_allowlist_are_refused_and_never_cross(counties: Counties) -> None:
    c = counties
    officer_a = c.as_(c.a, "officer-a", "case_officer")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await c.stub.RequestLetter(
            _request(
                c,
                kind=pb.LETTER_KIND_REGISTRY_CHECK,
                fields={"subject_name": "王某", "reporter_name": REPORTER_MARKER},
                excerpt=f"来信人{REPORTER_MARKER}反映",
            ),
            metadata=officer_a,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await count_rows(c.database, LetterRow, col(LetterRow.county_id) == c.a) == 0
    letter_id = await _letter_flow(c)
    # Marker scan: every record on the cross-county topic for these two counties.
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    records = await read_records(c.bootstrap, LETTERS_TOPIC, 3)
    ours = [r for r in records if r.key in (c.a.encode(), c.b.encode())]
    assert len(ours) == 3  # sent, accepted, answered
    for record in ours:
        assert REPORTER_MARKER.encode() not in (record.value or b"")
        assert all(REPORTER_MARKER.encode() not in value for _, value in record.headers)
        payload = json.loads(record.value or b"{}")
        assert payload["letter_id"] == letter_id
        assert "case_id" not in payload and b"case-7" not in (record.value or b"")
        if "fields" in payload:
            allowed = kinds.rules[next(k for k in kinds.rules if k.value == payload["kind"])].fields
            assert set(payload["fields"]) <= allowed


def _forged(
    c: Counties,
    record: CrossCountyRecord,
    *,
    key: Ed25519PrivateKey | None,
    source: str | None = None,
    event_id: str | None = None,
) -> tuple[str, tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """A raw Kafka record of `record`, signed by `key` (None: unsigned); its event id.

    With `event_id`, the record reuses that id (and is signed over it).
    """
    if key is None:
        event_id, sealed = event_id or str(uuid.uuid4()), record
    elif event_id is not None:
        message = signed_bytes(
            event_id=event_id,
            event_type=record.event_type,
            source=source or source_of(record.from_county),
            subject=record.subject_id(),
            payload=json.loads(record.model_dump_json()),
        )
        sealed = record.model_copy(update={"signature": sign(key, message)})
    else:
        sealed, event_id = seal(record, key)
    envelope = Envelope(
        id=event_id,
        type=record.event_type,
        source=source or source_of(record.from_county),
        time=datetime.now(UTC),
        county_id=record.county_id,
        zone_id=record.zone_id,
        data=sealed.model_dump_json().encode(),
        subject=record.subject_id(),
    )
    return event_id, (record.partition_key().encode(), envelope.data, envelope.headers())


async def test_forged_replayed_and_misaddressed_records_are_dead_lettered_and_change_nothing(
    counties: Counties, caplog: pytest.LogCaptureFixture
) -> None:
    c = counties
    caplog.set_level(logging.DEBUG)
    letter_id = await _letter_flow(c)
    genuine = [
        r
        for r in await read_records(c.bootstrap, LETTERS_TOPIC, 3)
        if r.key == c.b.encode()
        and dict(r.headers).get("ce_type") == LetterSent.event_type.encode()
    ]
    assert len(genuine) == 1
    before_rows = await count_rows(c.database, LetterRow)
    before_audit = {county: await _audit_actions(c.database, county) for county in (c.a, c.b)}
    now = datetime.now(UTC)

    def letter(letter_id: str, **overrides: Any) -> LetterSent:
        values: dict[str, Any] = {
            "county_id": c.b,
            "letter_id": letter_id,
            "from_county": c.a,
            "network_version": 1,
            "kind": "verify_fact",
            "allowlist_version": 1,
            "question": "请核实",
            "fields": {"subject_name": "王某"},
            "due_date": date(2027, 1, 15),
            "approved_at": now,
        }
        values.update(overrides)
        return LetterSent(**values)

    attacker = Ed25519PrivateKey.generate()
    cases = {
        "unsigned": _forged(c, letter("L-forged-1"), key=None),
        "bad-signature": _forged(c, letter("L-forged-2"), key=attacker),
        # A genuinely signed record whose source names another county.
        "misaddressed": _forged(c, letter("L-forged-3"), key=c.keys[c.a], source=source_of(c.b)),
        # A accepts a letter B never sent to A (it is A's own letter): misaddressed.
        "misaddressed-reply": _forged(
            c,
            LetterAccepted(
                county_id=c.b,
                letter_id=letter_id,
                from_county=c.a,
                network_version=1,
                decided_at=now,
            ),
            key=c.keys[c.a],
        ),
        # Addressed to a county that is not in the network.
        "misaddressed-nowhere": _forged(
            c, letter("L-forged-5", county_id=unique("county-x")), key=c.keys[c.a]
        ),
        # A's real key, but a field the kind does not allow and the reporter's identity.
        "outside-allowlist": _forged(
            c,
            letter("L-forged-4", fields={"subject_name": "王某", "reporter_name": REPORTER_MARKER}),
            key=c.keys[c.a],
        ),
    }
    genuine_record = genuine[0]
    replayed_id = dict(genuine_record.headers)["ce_id"].decode()
    # Another letter under the genuine record's id, signed by A's real key over that id: a
    # replay, dead-lettered although every signature checks.
    cases["replayed"] = _forged(
        c, letter("L-forged-6", question="请核实另一事项"), key=c.keys[c.a], event_id=replayed_id
    )
    await produce(
        c.bootstrap,
        LETTERS_TOPIC,
        # The genuine record again, byte for byte (at-least-once): acknowledged, no dead letter.
        # First, on B's partition: by the time the replay after it is parked, it was handled.
        [(genuine_record.key, genuine_record.value, list(genuine_record.headers))]
        + [raw for _, raw in cases.values()],
    )
    expected = {event_id: reason for reason, (event_id, _) in cases.items()}

    async def all_parked() -> bool:
        parked = await read_records(c.bootstrap, c.dead_letter_topic, 0, within=0.5, settle=0.5)
        return {dict(r.headers)["ce_id"].decode() for r in parked} >= set(expected)

    await wait_until(all_parked, "every forged record to be dead-lettered")
    parked = await read_records(c.bootstrap, c.dead_letter_topic, len(expected), settle=1.0)
    # Under the genuine id only the other letter is parked; the redelivery was acknowledged.
    under_genuine_id = [r for r in parked if dict(r.headers)["ce_id"].decode() == replayed_id]
    assert len(under_genuine_id) == 1
    assert under_genuine_id[0].value != genuine_record.value
    async with c.database.session() as session:
        remembered = await session.get(ReceivedRecordRow, replayed_id)
    assert remembered is not None
    errors = {
        dict(r.headers)["ce_id"].decode(): dict(r.headers)["x-dead-letter-error"].decode()
        for r in parked
    }
    for event_id, reason in expected.items():
        prefix = "misaddressed" if reason.startswith("misaddressed") else reason
        assert errors[event_id].startswith(prefix), (reason, errors[event_id])
    # The reporter marker appears in no log line and no metric.
    assert REPORTER_MARKER not in caplog.text
    assert REPORTER_MARKER.encode() not in generate_latest(c.metrics.registry)
    # Nothing counted for the dead-lettered records.
    assert c.steps("received") == 1 and c.steps("accept_received") == 1
    # Nothing changed: no row, no state, no audit entry.
    assert await count_rows(c.database, LetterRow) == before_rows
    assert await _state(c.database, c.a, letter_id) == "answered"
    assert await _state(c.database, c.b, letter_id) == "answered"
    for county, actions in before_audit.items():
        assert await _audit_actions(c.database, county) == actions


async def test_a_declined_letter_reaches_the_asking_county_with_its_ground(
    counties: Counties,
) -> None:
    c = counties
    officer_a = c.as_(c.a, "officer-a", "case_officer")
    leader_a = c.as_(c.a, "leader-a", "county_leadership")
    leader_b = c.as_(c.b, "leader-b", "county_leadership")
    letter_id = (await c.stub.RequestLetter(_request(c), metadata=officer_a)).letter.letter_id
    await c.stub.ApproveLetter(
        pb.ApproveLetterRequest(idempotency_key="k", letter_id=letter_id), metadata=leader_a
    )

    async def received() -> bool:
        return await _state(c.database, c.b, letter_id) == "received"

    await wait_until(received, "B to receive the letter")
    # The asked county cannot answer before accepting, nor decline without a ground.
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await c.stub.AnswerLetter(
            pb.AnswerLetterRequest(idempotency_key="k1", letter_id=letter_id, findings="x"),
            metadata=c.as_(c.b, "officer-b", "case_officer"),
        )
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as groundless:
        await c.stub.DecideLetter(
            pb.DecideLetterRequest(idempotency_key="k2", letter_id=letter_id, accept=False),
            metadata=leader_b,
        )
    assert groundless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ground = "该人员已调离本县，无法核实"
    declined = await c.stub.DecideLetter(
        pb.DecideLetterRequest(
            idempotency_key="k3", letter_id=letter_id, accept=False, ground=ground
        ),
        metadata=leader_b,
    )
    assert declined.letter.state == pb.LETTER_STATE_DECLINED

    async def learned() -> bool:
        row = await _row(c.database, c.a, letter_id)
        return row is not None and row.state == "declined" and row.decline_ground == ground

    await wait_until(learned, "A to learn the letter was declined, with the ground")
    assert c.steps("declined") == 1 and c.steps("decline_received") == 1


async def test_a_letter_entered_after_the_fact_carries_its_paper_dates_to_both_counties(
    counties: Counties,
) -> None:
    """补录: each step dated when it happened on paper, checked like cases' back-entry."""
    c = counties
    leader_a = c.as_(c.a, "leader-a", "county_leadership", BACK_ENTRY_ROLE)
    leader_b = c.as_(c.b, "leader-b", "county_leadership", BACK_ENTRY_ROLE)
    now = datetime.now(UTC)
    asked, approved = now - timedelta(days=120), now - timedelta(days=119)
    decided, answered = now - timedelta(days=117), now - timedelta(days=110)

    def stamp(moment: datetime) -> Timestamp:
        value = Timestamp()
        value.FromDatetime(moment)
        return value

    # Only a principal granted back-entry may date a step; never into the future.
    plain = c.as_(c.a, "officer-a", "case_officer")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await c.stub.RequestLetter(_request(c, effective_at=stamp(asked)), metadata=plain)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as future:
        await c.stub.RequestLetter(
            _request(c, effective_at=stamp(now + timedelta(days=1))), metadata=leader_a
        )
    assert future.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    drafted = await c.stub.RequestLetter(_request(c, effective_at=stamp(asked)), metadata=leader_a)
    letter_id = drafted.letter.letter_id
    # The due date counts from the paper date, on the asked county's calendar.
    assert date.fromisoformat(drafted.letter.due_date) < (now - timedelta(days=90)).date()
    # Not before the letter's previous step.
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await c.stub.ApproveLetter(
            pb.ApproveLetterRequest(
                idempotency_key="k-early", letter_id=letter_id, effective_at=stamp(asked - _DAY)
            ),
            metadata=leader_a,
        )
    assert early.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await c.stub.ApproveLetter(
        pb.ApproveLetterRequest(
            idempotency_key="k-approve", letter_id=letter_id, effective_at=stamp(approved)
        ),
        metadata=leader_a,
    )

    async def state_of(county: str, state: str) -> bool:
        return await _state(c.database, county, letter_id) == state

    await wait_until(lambda: state_of(c.b, "received"), "B to receive the back-dated letter")
    await c.stub.DecideLetter(
        pb.DecideLetterRequest(
            idempotency_key="k-accept",
            letter_id=letter_id,
            accept=True,
            effective_at=stamp(decided),
        ),
        metadata=leader_b,
    )
    await wait_until(lambda: state_of(c.a, "accepted"), "A to learn of the acceptance")
    await c.stub.AnswerLetter(
        pb.AnswerLetterRequest(
            idempotency_key="k-answer",
            letter_id=letter_id,
            findings="经核实，情况属实",
            effective_at=stamp(answered),
        ),
        metadata=leader_b,
    )
    await wait_until(lambda: state_of(c.a, "answered"), "A to record the answer")
    for county in (c.a, c.b):
        row = await _row(c.database, county, letter_id)
        assert row is not None and row.approved_at and row.decided_at and row.answered_at
        assert as_utc(row.approved_at) == approved, county
        assert as_utc(row.decided_at) == decided and as_utc(row.answered_at) == answered
    # The audit log runs on real time and names the paper date.
    async with c.database.session() as session:
        sent = (
            await session.exec(
                select(AuditEntry).where(
                    col(AuditEntry.county_id) == c.a,
                    col(AuditEntry.action) == "letter.sent",
                    col(AuditEntry.record_id) == letter_id,
                )
            )
        ).one()
    assert as_utc(sent.at) > now - timedelta(minutes=5)
    assert json.loads(sent.detail)["effective_at"] == approved.isoformat()
    # Approval to answer: the paper's nine days, not the seconds of entry.
    assert c.metrics.registry.get_sample_value(
        "xiezuo_collaboration_approval_to_answer_seconds_sum",
        {"from_county": c.a, "to_county": c.b, "kind": "verify_fact"},
    ) == pytest.approx(9 * 86400, rel=0.01)
