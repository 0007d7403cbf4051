"""The sending county's read-only trail of a transferred clue's outcome, over the real broker.

County A hands a clue to county B; B's cases moves it (real workflow events through B's cases
outbox); B's collaboration sends back only the stage and the kind of decision, signed; A
verifies and keeps the trail. Nothing else crosses; forged, misaddressed and replayed outcome
records are dead-lettered and change nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select
from xiezuo.collaboration.v1 import transfers_pb2 as pb

from services.cases.store.tables import CaseFileRow
from services.collaboration.api.transfers import TransferServicer
from services.collaboration.domain.signing import sign, signed_bytes
from services.collaboration.handlers.transfer_outcomes import OutcomeReceiver, OutcomeReporter
from services.collaboration.handlers.transfers import TransferRecordHandler
from services.collaboration.letters import seal, source_of
from services.collaboration.store import transfer_trail
from services.collaboration.store.network import current_network
from services.collaboration.store.received_records import ReceivedRecords
from services.contracts.cases import (
    WORKFLOW_TOPIC,
    CaseDecided,
    CaseStepRecorded,
    ClueDisposed,
    StageChanged,
)
from services.contracts.collaboration import LETTERS_TOPIC
from services.contracts.transfers import (
    ClueTransferred,
    TransferOutcome,
)
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.localstack import KafkaNode
from services.runtime.outbox import record_event
from services.runtime.tokens import Principal
from tests.collaboration_network import TwoCounties, serving_transfers, two_counties
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    produce,
    read_records,
    unique,
    wait_until,
)

CITY = "city-lz"
# Values B's cases holds about the clue that must never reach A.
NAME_MARKER = "审查对象王某某-MARKER-5521"
SANCTION_MARKER = "留党察看一年-MARKER-8812"
REASON_MARKER = "谈话笔录要点-MARKER-3307"
FIELDS = {
    "subject_name": "李某",
    "township_of_jurisdiction": "t-07",
    "allegation_category": "embezzlement",
}
# Everything an outcome record may carry (the envelope fields of every cross-county record,
# then the trail's own).
OUTCOME_KEYS = {
    "county_id",
    "zone_id",
    "letter_id",
    "from_county",
    "network_version",
    "signature",
    "stage",
    "decision",
    "at",
}


@pytest.fixture
async def counties(kafka: KafkaNode, make_database: MakeDatabase) -> AsyncIterator[TwoCounties]:
    def wire(c: TwoCounties) -> None:
        # As collaboration/app.py wires them: a redelivery is told from a replay.
        received = ReceivedRecords()
        c.collaboration_consumer.on(
            ClueTransferred,
            TransferRecordHandler(c.letter_desk, c.rules),
            replay_is_poison=True,
            ledger=received,
        )
        c.collaboration_consumer.on(
            TransferOutcome, OutcomeReceiver(c.letter_desk), replay_is_poison=True, ledger=received
        )
        reporter = OutcomeReporter(c.letter_desk)
        for step in (StageChanged, ClueDisposed, CaseDecided):
            c.collaboration_consumer.on(step, reporter)

    async with two_counties(
        kafka.bootstrap_servers,
        make_database,
        city=CITY,
        wire=wire,
        topics=[WORKFLOW_TOPIC],
        relay_cases=True,
    ) as c:
        yield c


async def _transfer(c: TwoCounties, mode: Any = "transfer") -> str:
    async with c.collaboration.transaction() as session:
        network = await current_network(session)
        assert network is not None
        record = await c.desk.send(
            session,
            network,
            actor="leader-a",
            from_county=c.a,
            to_county=c.b,
            mode=mode,
            fields=FIELDS,
            excerpt="",
            now=datetime.now(UTC),
        )
    clue_id = record.letter_id

    async def registered() -> bool:
        async with c.cases.session() as session:
            query = select(CaseFileRow).where(col(CaseFileRow.case_id) == clue_id)
            return (await session.exec(query)).first() is not None

    await wait_until(registered, "B's cases to register the transferred clue")
    return clue_id


def _step(kind: type[CaseStepRecorded], county: str, case_id: str, **values: Any) -> Any:
    return kind(
        county_id=county,
        zone_id="*",
        case_id=case_id,
        township_id="t-07",
        actor="officer-b-7",
        reason=REASON_MARKER,
        rule_version="test",
        occurred_at=datetime.now(UTC),
        **values,
    )


async def _cases_publish(c: TwoCounties, *steps: CaseStepRecorded) -> None:
    """B's cases publishes its workflow steps through its own outbox, as it does in service."""
    async with c.cases.transaction() as session:
        for step in steps:
            record_event(session, step, source="xiezuo/cases")


async def _trail(c: TwoCounties, transfer_id: str) -> list[tuple[str, str]]:
    async with c.collaboration.session() as session:
        rows = await transfer_trail.trail(session, c.a, transfer_id)
    return [(row.stage, row.decision) for row in rows]


async def _audit(database: Database, county: str, action: str) -> int:
    async with database.session() as session:
        rows = await session.exec(
            select(AuditEntry.record_id).where(
                col(AuditEntry.county_id) == county, col(AuditEntry.action) == action
            )
        )
        return len(list(rows.all()))


async def test_the_sender_keeps_only_the_stage_and_decision_of_a_transferred_clue(
    counties: TwoCounties,
) -> None:
    c = counties
    transfer_id = await _transfer(c)
    # B's own clue moves too: nothing of it crosses.
    own_clue = unique("own-clue")
    await _cases_publish(
        c,
        _step(
            ClueDisposed,
            c.b,
            own_clue,
            action="approve_disposal",
            from_stage="disposal_proposed",
            to_stage="closed",
            detail={"way": "close"},
        ),
        _step(
            ClueDisposed,
            c.b,
            transfer_id,
            action="approve_disposal",
            from_stage="disposal_proposed",
            to_stage="verification",
            detail={"way": "preliminary_verification", "approvers": [NAME_MARKER]},
        ),
        _step(
            CaseDecided,
            c.b,
            transfer_id,
            action="approve_decision",
            from_stage="decision_proposed",
            to_stage="decided",
            detail={
                "decision": "party_sanction",
                "sanctions": [{"person": NAME_MARKER, "sanction": SANCTION_MARKER}],
            },
        ),
    )

    async def trail_has_both() -> bool:
        return len(await _trail(c, transfer_id)) == 2

    await wait_until(trail_has_both, "A's trail to show both steps")
    assert await _trail(c, transfer_id) == [
        ("verification", "preliminary_verification"),
        ("decided", "party_sanction"),
    ]
    # Audited on both sides; B's own clue sent nothing.
    assert await _audit(c.collaboration, c.b, "transfer.outcome_sent") == 2
    assert await _audit(c.collaboration, c.a, "transfer.outcome_received") == 2
    # Marker scan of every record addressed to A: only the outcome keys, none of B's detail.
    records = [
        r
        for r in await read_records(c.bootstrap, LETTERS_TOPIC, 2, settle=1.0)
        if r.key == c.a.encode()
    ]
    assert len(records) == 2
    for record in records:
        raw = (record.value or b"") + b"".join(value for _, value in record.headers)
        for marker in (NAME_MARKER, SANCTION_MARKER, REASON_MARKER, "officer-b-7", "李某"):
            assert marker.encode() not in raw, marker
        payload = json.loads(record.value or b"{}")
        assert set(payload) == OUTCOME_KEYS
        assert own_clue not in json.dumps(payload)


def _envelope(record: TransferOutcome, event_id: str) -> Envelope:
    return Envelope(
        id=event_id,
        type=record.event_type,
        source=source_of(record.from_county),
        time=datetime.now(UTC),
        county_id=record.county_id,
        zone_id="*",
        data=record.model_dump_json().encode(),
        subject=record.subject_id(),
    )


async def test_forged_misaddressed_and_replayed_outcomes_are_dead_lettered(
    counties: TwoCounties,
) -> None:
    c = counties
    transfer_id = await _transfer(c)
    async with c.collaboration.session() as session:
        network = await current_network(session)
    assert network is not None

    def outcome(**values: Any) -> TransferOutcome:
        fields: dict[str, Any] = {
            "county_id": c.a,
            "letter_id": transfer_id,
            "from_county": c.b,
            "network_version": network.version,
            "stage": "closed",
            "decision": "close",
            "at": datetime.now(UTC),
        }
        fields.update(values)
        return TransferOutcome(**fields)

    impostor = Ed25519PrivateKey.generate()
    forged: dict[str, tuple[TransferOutcome, str]] = {}
    forged["bad-signature"] = seal(outcome(), impostor)
    forged["unsigned"] = (outcome(), str(uuid.uuid4()))
    # Signed by B, but about a transfer A never sent to B.
    forged["misaddressed"] = seal(outcome(letter_id="T-never-sent"), c.keys[c.b])
    # Signed by A about its own transfer (a county cannot write to itself).
    forged["misaddressed: a county"] = seal(outcome(from_county=c.a), c.keys[c.a])
    await produce(
        c.bootstrap,
        LETTERS_TOPIC,
        [
            (c.a.encode(), record.model_dump_json().encode(), _envelope(record, event_id).headers())
            for record, event_id in forged.values()
        ],
    )
    expected = {event_id: reason for reason, (_, event_id) in forged.items()}

    async def all_parked() -> bool:
        parked = await read_records(c.bootstrap, c.dead_letter_topic, 0, within=0.5, settle=0.5)
        return {dict(r.headers)["ce_id"].decode() for r in parked} >= set(expected)

    await wait_until(all_parked, "every forged outcome to be dead-lettered")
    parked = await read_records(c.bootstrap, c.dead_letter_topic, len(expected))
    errors = {
        dict(r.headers)["ce_id"].decode(): dict(r.headers)["x-dead-letter-error"].decode()
        for r in parked
    }
    for event_id, reason in expected.items():
        assert errors[event_id].startswith(reason), (reason, errors[event_id])
    assert await _trail(c, transfer_id) == []
    # A genuine step after them reaches the trail; played again, it is a replay.
    await _cases_publish(
        c,
        _step(
            ClueDisposed,
            c.b,
            transfer_id,
            action="approve_disposal",
            from_stage="disposal_proposed",
            to_stage="closed",
            detail={"way": "close"},
        ),
    )

    async def trail_has_it() -> bool:
        return await _trail(c, transfer_id) == [("closed", "close")]

    await wait_until(trail_has_it, "the genuine outcome to reach A's trail")
    (original,) = [
        r
        for r in await read_records(c.bootstrap, LETTERS_TOPIC, 1, settle=1.0)
        if r.key == c.a.encode()
        and dict(r.headers).get("ce_type") == TransferOutcome.event_type.encode()
        and dict(r.headers).get("ce_subject") == transfer_id.encode()
        and dict(r.headers)["ce_id"].decode() not in expected
    ]
    replayed_id = dict(original.headers)["ce_id"].decode()
    # Another outcome under that id, signed by B's real key over it: a replay.
    other = outcome(stage="hearing", decision="")
    message = signed_bytes(
        event_id=replayed_id,
        event_type=other.event_type,
        source=source_of(c.b),
        subject=other.subject_id(),
        payload=json.loads(other.model_dump_json()),
    )
    other = other.model_copy(update={"signature": sign(c.keys[c.b], message)})
    await produce(
        c.bootstrap,
        LETTERS_TOPIC,
        [
            # The genuine record again, byte for byte (at-least-once): acknowledged.
            (original.key, original.value, list(original.headers)),
            (
                c.a.encode(),
                other.model_dump_json().encode(),
                _envelope(other, replayed_id).headers(),
            ),
        ],
    )

    async def under_replayed_id() -> list[Any]:
        parked = await read_records(c.bootstrap, c.dead_letter_topic, 0, within=0.5, settle=0.5)
        return [r for r in parked if dict(r.headers)["ce_id"].decode() == replayed_id]

    async def replay_parked() -> bool:
        return bool(await under_replayed_id())

    await wait_until(replay_parked, "the replayed outcome to be dead-lettered")
    # Only the other outcome: the redelivery before it on A's partition was acknowledged.
    (parked,) = await under_replayed_id()
    assert dict(parked.headers)["x-dead-letter-error"].startswith(b"replayed")
    assert parked.value != original.value
    assert await _trail(c, transfer_id) == [("closed", "close")]


async def test_the_trail_over_grpc_for_the_sender_and_the_city_only(counties: TwoCounties) -> None:
    c = counties
    transferred = await _transfer(c)
    designated = await _transfer(c, mode="designation")
    await _cases_publish(
        c,
        *(
            _step(
                ClueDisposed,
                c.b,
                clue,
                action="approve_disposal",
                from_stage="disposal_proposed",
                to_stage="inquiry",
                detail={"way": "inquiry"},
            )
            for clue in (transferred, designated)
        ),
    )

    async def both_reported() -> bool:
        return all([await _trail(c, clue) for clue in (transferred, designated)])

    await wait_until(both_reported, "A's trail of both clues")
    async with serving_transfers(TransferServicer(c.collaboration, c.desk)) as (stub, issuer):

        def as_(county: str, role: str) -> Any:
            principal = Principal(
                subject=f"{county}-{role}", roles=frozenset({role}), county_id=county
            )
            return (("authorization", f"Bearer {issuer.issue(principal)}"),)

        def ask(clue: str) -> pb.GetTransferTrailRequest:
            return pb.GetTransferTrailRequest(transfer_id=clue)

        trail = await stub.GetTransferTrail(
            ask(transferred), metadata=as_(c.a, "county_leadership")
        )
        assert (trail.from_county_id, trail.target_county_id, trail.mode) == (
            c.a,
            c.b,
            "transfer",
        )
        assert [(s.stage, s.decision) for s in trail.steps] == [("inquiry", "inquiry")]
        assert trail.steps[0].at.seconds > 0
        city = await stub.GetTransferTrail(ask(designated), metadata=as_(CITY, "city_commission"))
        assert [(s.stage, s.decision) for s in city.steps] == [("inquiry", "inquiry")]
        # The receiving county's leadership, A's case officer, and the city for a county's own
        # transfer: denied. An unknown id: not found. No id: invalid.
        for clue, metadata in (
            (transferred, as_(c.b, "county_leadership")),
            (transferred, as_(c.a, "case_officer")),
            (transferred, as_(CITY, "city_commission")),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.GetTransferTrail(ask(clue), metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, metadata
        leader = as_(c.a, "county_leadership")
        for clue, code in (
            ("T-unknown", grpc.StatusCode.NOT_FOUND),
            ("", grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetTransferTrail(ask(clue), metadata=leader)
            assert refused.value.code() == code
