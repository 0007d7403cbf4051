"""Clue transfer (线索移送) and designated jurisdiction (指定管辖) over the real broker.

County A hands a clue to county B (and the city designates B): B's collaboration verifies the
signed record and B's cases registers a new clue with only the allowlisted fields; a marker scan
of every cross-county record finds no reporter identity; forged records are dead-lettered and
change nothing.
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

from services.cases.store.tables import CaseFileRow, CaseStepRow, ClueRow
from services.collaboration.api.transfers import TransferServicer
from services.collaboration.domain.transfer_rules import (
    TransferRulesInvalid,
    parse_transfer_rules,
)
from services.collaboration.handlers.transfers import TransferRecordHandler
from services.collaboration.letters import seal, source_of
from services.collaboration.settings import DEFAULT_TRANSFER_RULES_FILE
from services.collaboration.store.network import current_network
from services.collaboration.transfers import TransferRefused
from services.contracts.collaboration import LETTERS_TOPIC
from services.contracts.transfers import ClueTransferred
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.localstack import KafkaNode
from services.runtime.tokens import Principal
from tests.collaboration_network import TwoCounties, serving_transfers, two_counties
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    count_rows,
    produce,
    read_records,
    wait_until,
)

REPORTER_MARKER = "举报人张三丰-13800138000"
REPORT_TEXT_MARKER = "实名举报原文-MARKER-7731"
CITY = "city-lz"
RULES = parse_transfer_rules(DEFAULT_TRANSFER_RULES_FILE.read_text(encoding="utf-8"))
FIELDS = {
    "subject_name": "李某",
    "subject_position": "党支部书记",
    "subject_employer": "某村村委会",
    "township_of_jurisdiction": "t-07",
    "allegation_category": "embezzlement",
}


@pytest.fixture
async def network(kafka: KafkaNode, make_database: MakeDatabase) -> AsyncIterator[TwoCounties]:
    def wire(n: TwoCounties) -> None:
        n.collaboration_consumer.on(
            ClueTransferred, TransferRecordHandler(n.letter_desk, RULES), replay_is_poison=True
        )

    async with two_counties(kafka.bootstrap_servers, make_database, city=CITY, wire=wire) as n:
        yield n


async def _send(n: TwoCounties, mode: Any = "transfer", **overrides: Any) -> ClueTransferred:
    values: dict[str, Any] = {
        "actor": "leader-a",
        "from_county": n.a,
        "to_county": n.b,
        "mode": mode,
        "fields": FIELDS,
        "excerpt": "经初核，李某涉嫌侵占集体资金约12万元。",
        "now": datetime.now(UTC),
    }
    values.update(overrides)
    async with n.collaboration.transaction() as session:
        network = await current_network(session)
        assert network is not None
        return await n.desk.send(session, network, **values)


async def _case_file(n: TwoCounties, clue_id: str) -> CaseFileRow | None:
    async with n.cases.session() as session:
        query = select(CaseFileRow).where(col(CaseFileRow.case_id) == clue_id)
        return (await session.exec(query)).first()


async def _audit(database: Database, county: str) -> list[str]:
    async with database.session() as session:
        rows = await session.exec(
            select(AuditEntry.action)
            .where(col(AuditEntry.county_id) == county)
            .order_by(col(AuditEntry.seq))
        )
        return list(rows.all())


async def test_a_transfer_and_a_designation_arrive_as_clues_with_only_allowlisted_fields(
    network: TwoCounties,
) -> None:
    n = network
    # The sender refuses a field outside the allowlist (the reporter's identity) and sends nothing.
    with pytest.raises(TransferRefused) as refused:
        await _send(n, fields={**FIELDS, "reporter_name": REPORTER_MARKER})
    assert [name for name, _ in refused.value.problems] == ["fields[reporter_name]"]
    transferred = await _send(n)
    designated = await _send(n, mode="designation")
    assert designated.designated_by == CITY

    async def both_registered() -> bool:
        return all([await _case_file(n, r.letter_id) for r in (transferred, designated)])

    await wait_until(both_registered, "B's cases to register both clues")
    async with n.cases.session() as session:
        clue = await session.get(ClueRow, transferred.letter_id)
        steps = (
            await session.exec(
                select(CaseStepRow).where(col(CaseStepRow.case_id) == designated.letter_id)
            )
        ).all()
    assert clue is not None and clue.county_id == n.b and clue.channel == "transfer"
    assert clue.source_report_id == "" and clue.township_id == "t-07"
    assert json.loads(clue.allegation_categories) == ["embezzlement"]
    (origin,) = steps
    assert origin.action == "designation_received" and origin.actor == f"county:{n.a}"
    assert origin.reason == f"designated by {CITY}, from county {n.a}"
    assert set(json.loads(origin.detail)["fields"]) == set(FIELDS)
    # Audited in both counties: sent in A, received (and registered) in B.
    assert await _audit(n.collaboration, n.a) == [
        "network.imported",
        "transfer.sent",
        "designation.sent",
    ]
    assert await _audit(n.collaboration, n.b) == [
        "network.imported",
        "transfer.received",
        "designation.received",
    ]
    cases_audit = await _audit(n.cases, n.b)
    assert cases_audit.count("clue.registered") == 2
    # Marker scan of every cross-county record of these counties: no reporter identity, no
    # report text, only allowlisted fields.
    records = [
        r
        for r in await read_records(n.bootstrap, LETTERS_TOPIC, 2, settle=1.0)
        if r.key in (n.a.encode(), n.b.encode())
    ]
    assert len(records) == 2
    for record in records:
        raw = (record.value or b"") + b"".join(value for _, value in record.headers)
        assert REPORTER_MARKER.encode() not in raw and REPORT_TEXT_MARKER.encode() not in raw
        payload = json.loads(record.value or b"{}")
        assert set(payload["fields"]) <= RULES.rule(payload["mode"]).fields


def _forged(
    record: ClueTransferred, *, key: Ed25519PrivateKey | None
) -> tuple[str, tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    if key is None:
        event_id, sealed = str(uuid.uuid4()), record
    else:
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


async def test_forged_transfers_are_dead_lettered_and_register_nothing(
    network: TwoCounties,
) -> None:
    n = network

    def transfer(transfer_id: str, **overrides: Any) -> ClueTransferred:
        values: dict[str, Any] = {
            "county_id": n.b,
            "letter_id": transfer_id,
            "from_county": n.a,
            "network_version": 1,
            "mode": "transfer",
            "allowlist_version": RULES.version,
            "fields": FIELDS,
            "sent_at": datetime.now(UTC),
        }
        values.update(overrides)
        return ClueTransferred(**values)

    attacker = Ed25519PrivateKey.generate()
    forged = {
        "unsigned": _forged(transfer("T-forged-1"), key=None),
        "bad-signature": _forged(transfer("T-forged-2"), key=attacker),
        # A's real key, but the reporter's identity and the report text in fields.
        "outside-allowlist": _forged(
            transfer(
                "T-forged-3",
                fields={
                    **FIELDS,
                    "reporter_name": REPORTER_MARKER,
                    "report_text": REPORT_TEXT_MARKER,
                },
            ),
            key=n.keys[n.a],
        ),
        # A plain transfer claiming the city designated it.
        "misaddressed": _forged(transfer("T-forged-4", designated_by=CITY), key=n.keys[n.a]),
    }
    await produce(n.bootstrap, LETTERS_TOPIC, [raw for _, raw in forged.values()])
    expected = {event_id: reason for reason, (event_id, _) in forged.items()}

    async def all_parked() -> bool:
        parked = await read_records(n.bootstrap, n.dead_letter_topic, 0, within=0.5, settle=0.5)
        return {dict(r.headers)["ce_id"].decode() for r in parked} >= set(expected)

    await wait_until(all_parked, "every forged transfer to be dead-lettered")
    parked = await read_records(n.bootstrap, n.dead_letter_topic, len(expected))
    errors = {
        dict(r.headers)["ce_id"].decode(): dict(r.headers)["x-dead-letter-error"].decode()
        for r in parked
    }
    for event_id, reason in expected.items():
        assert errors[event_id].startswith(reason), (reason, errors[event_id])
    # A genuine transfer sent after them arrives: so the forged ones were processed and refused.
    genuine = await _send(n)

    async def registered() -> bool:
        return await _case_file(n, genuine.letter_id) is not None

    await wait_until(registered, "the genuine transfer to be registered")
    # The genuine record played again (same CloudEvent id): a replay, dead-lettered.
    (original,) = [
        r
        for r in await read_records(n.bootstrap, LETTERS_TOPIC, 1, settle=1.0)
        if dict(r.headers).get("ce_subject") == genuine.letter_id.encode()
    ]
    replayed_id = dict(original.headers)["ce_id"].decode()
    await produce(
        n.bootstrap, LETTERS_TOPIC, [(original.key, original.value, list(original.headers))]
    )

    async def replay_parked() -> bool:
        parked = await read_records(n.bootstrap, n.dead_letter_topic, 0, within=0.5, settle=0.5)
        return any(
            dict(r.headers)["ce_id"].decode() == replayed_id
            and dict(r.headers)["x-dead-letter-error"].startswith(b"replayed")
            for r in parked
        )

    await wait_until(replay_parked, "the replayed transfer to be dead-lettered")
    assert await count_rows(n.cases, ClueRow, col(ClueRow.county_id) == n.b) == 1
    assert await _audit(n.collaboration, n.b) == ["network.imported", "transfer.received"]


def test_the_transfer_allowlist_refuses_a_reporter_field() -> None:
    text = DEFAULT_TRANSFER_RULES_FILE.read_text(encoding="utf-8").replace(
        "township_of_jurisdiction, allegation_category]",
        "township_of_jurisdiction, allegation_category, reporter_phone]",
        1,
    )
    with pytest.raises(TransferRulesInvalid) as invalid:
        parse_transfer_rules(text)
    assert invalid.value.errors == [
        "modes.transfer.fields: reporter_phone may never cross to another county"
    ]


async def test_transfer_and_designation_over_grpc_by_role(network: TwoCounties) -> None:
    n = network
    async with serving_transfers(TransferServicer(n.collaboration, n.desk)) as (stub, issuer):

        def as_(county: str, *roles: str) -> Any:
            principal = Principal(
                subject=f"{county}-{roles[0]}", roles=frozenset(roles), county_id=county
            )
            return (("authorization", f"Bearer {issuer.issue(principal)}"),)

        transfer = pb.TransferClueRequest(
            idempotency_key="k-1", county_id=n.a, target_county_id=n.b, fields=FIELDS
        )
        # A case officer may not hand a clue over; the city may not use the county's call.
        for metadata in (as_(n.a, "case_officer"), as_(CITY, "city_commission")):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.TransferClue(transfer, metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A field outside the allowlist: INVALID_ARGUMENT naming it, nothing sent.
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.TransferClue(
                pb.TransferClueRequest(
                    idempotency_key="k-0",
                    county_id=n.a,
                    target_county_id=n.b,
                    fields={**FIELDS, "reporter_name": REPORTER_MARKER},
                ),
                metadata=as_(n.a, "county_leadership"),
            )
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "reporter_name" in (invalid.value.details() or "")
        leader = as_(n.a, "county_leadership")
        sent = await stub.TransferClue(transfer, metadata=leader)
        again = await stub.TransferClue(transfer, metadata=leader)
        assert again.transfer_id == sent.transfer_id and sent.allowlist_version == RULES.version
        designate = pb.DesignateJurisdictionRequest(
            idempotency_key="k-2", from_county_id=n.a, target_county_id=n.b, fields=FIELDS
        )
        with pytest.raises(grpc.aio.AioRpcError) as county_denied:
            await stub.DesignateJurisdiction(designate, metadata=leader)
        assert county_denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        designated = await stub.DesignateJurisdiction(
            designate, metadata=as_(CITY, "city_commission")
        )

    async def both_registered() -> bool:
        ids = (sent.transfer_id, designated.transfer_id)
        return all([await _case_file(n, clue_id) for clue_id in ids])

    await wait_until(both_registered, "B's cases to register the transfer and the designation")
    # The repeated call sent nothing more: two clues in B, two sends audited in A.
    assert await count_rows(n.cases, ClueRow, col(ClueRow.county_id) == n.b) == 2
    assert await _audit(n.collaboration, n.a) == [
        "network.imported",
        "transfer.sent",
        "designation.sent",
    ]
