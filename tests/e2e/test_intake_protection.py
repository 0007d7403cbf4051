"""Reporter protection across real processes: channels, identity never leaks, receipts, reveals."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.runtime.grpc.errors import field_violations
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RUN = uuid.uuid4().hex[:8]
COUNTY = f"county-p{RUN}"
ZONE = f"zone-p{RUN}"
TIMEOUT = 10.0
SCAN_DEADLINE = 60.0


def _identity(tag: str) -> intake_pb2.ReporterIdentity:
    return intake_pb2.ReporterIdentity(
        full_name=f"Reporter {tag} {RUN}",
        id_number=f"ID{tag}{RUN}X",
        phone=f"139{tag}{RUN}",
        address=f"Lane {tag} {RUN}",
    )


def _base(key: str, channel: int) -> intake_pb2.SubmitReportRequest:
    return intake_pb2.SubmitReportRequest(
        idempotency_key=key,
        county_id=COUNTY,
        zone_id=ZONE,
        township_id="township-1",
        channel=channel,  # type: ignore[arg-type]
        subject=intake_pb2.ReportedSubject(
            name="Li Official",
            post="township head",
            unit="Township government",
            township_id="township-1",
            cadre_level=intake_pb2.CADRE_LEVEL_COUNTY_SECTION,
        ),
        allegation_categories=["poverty_alleviation_funds"],
        content="Subsidies were paid to relatives.",
    )


def _reports() -> list[intake_pb2.SubmitReportRequest]:
    called_at = Timestamp()
    called_at.FromSeconds(int(time.time()) - 3600)
    visit = _base(f"visit-{RUN}", intake_pb2.REPORT_CHANNEL_VISIT)
    visit.visit.CopyFrom(
        intake_pb2.VisitDetails(visit_date="2026-01-05", receiving_officer_id="officer-1")
    )
    phone = _base(f"phone-{RUN}", intake_pb2.REPORT_CHANNEL_PHONE)
    phone.phone.CopyFrom(intake_pb2.PhoneDetails(called_at=called_at, line="12388"))
    informant = _base(f"informant-{RUN}", intake_pb2.REPORT_CHANNEL_VILLAGE_INFORMANT)
    informant.village_informant.CopyFrom(
        intake_pb2.VillageInformantDetails(informant_id=f"inf-{RUN}")
    )
    forwarded = _base(f"forwarded-{RUN}", intake_pb2.REPORT_CHANNEL_FORWARDED)
    forwarded.forwarded.CopyFrom(
        intake_pb2.ForwardedDetails(forwarding_body="City commission", forwarding_reference="C-1")
    )
    online = _base(f"online-{RUN}", intake_pb2.REPORT_CHANNEL_ONLINE)
    reports = [visit, phone, informant, forwarded, online]
    for index, report in enumerate(reports):
        report.reporter.CopyFrom(_identity(f"{index}"))
    return reports


def _secrets(reports: list[intake_pb2.SubmitReportRequest]) -> list[str]:
    values = [f"inf-{RUN}"]
    for report in reports:
        r = report.reporter
        values += [r.full_name, r.id_number, r.phone, r.address]
    return values


def _auth(stack: Stack, roles: list[str], subject: str) -> tuple[tuple[str, str], ...]:
    token = stack.token(roles=roles, county_id=COUNTY, zone_ids=[ZONE], subject=subject)
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[intake_pb2_grpc.IntakeServiceStub]:
    async with grpc.aio.insecure_channel(stack.grpc("intake")) as channel:
        yield intake_pb2_grpc.IntakeServiceStub(channel)


@pytest.fixture(scope="module")
async def submitted(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub
) -> list[tuple[intake_pb2.SubmitReportRequest, intake_pb2.SubmitReportResponse]]:
    officer = _auth(stack, ["intake_officer"], "desk-officer")
    out = []
    for request in _reports():
        response = await intake.SubmitReport(request, metadata=officer, timeout=TIMEOUT)
        out.append((request, response))
    return out


async def _count_reports(stack: Stack) -> int:
    url = stack.database_url("intake").replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM report"))
    finally:
        await connection.close()


async def test_each_channel_refuses_a_report_missing_its_fields(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub
) -> None:
    officer = _auth(stack, ["intake_officer"], "desk-officer")
    before = await _count_reports(stack)
    expected = {
        intake_pb2.REPORT_CHANNEL_VISIT: {"visit.visit_date", "visit.receiving_officer_id"},
        intake_pb2.REPORT_CHANNEL_PHONE: {"phone.called_at"},
        intake_pb2.REPORT_CHANNEL_VILLAGE_INFORMANT: {"village_informant.informant_id"},
        intake_pb2.REPORT_CHANNEL_DAILY_SUPERVISION: {"daily_supervision.supervision_record_id"},
        intake_pb2.REPORT_CHANNEL_SPECIAL_CAMPAIGN: {"campaign_id"},
        intake_pb2.REPORT_CHANNEL_INSPECTION_TOUR: {"inspection_tour.tour_id"},
        intake_pb2.REPORT_CHANNEL_FORWARDED: {
            "forwarded.forwarding_body",
            "forwarded.forwarding_reference",
        },
    }
    for channel, fields in expected.items():
        request = _base(f"bad-{uuid.uuid4().hex}", channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await intake.SubmitReport(request, metadata=officer, timeout=TIMEOUT)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(dict(field_violations(refused.value))) == fields, channel
    unknown = _base(f"bad-{uuid.uuid4().hex}", intake_pb2.REPORT_CHANNEL_LETTER)
    unknown.allegation_categories[:] = ["space_piracy"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await intake.SubmitReport(unknown, metadata=officer, timeout=TIMEOUT)
    assert set(dict(field_violations(refused.value))) == {"allegation_categories[0]"}
    assert await _count_reports(stack) == before


async def _all_topic_bytes(bootstrap: str) -> dict[str, bytes]:
    """Everything on every topic of the broker, from the beginning to the current end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(await admin.list_topics())
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, bytearray] = {}
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        until = time.monotonic() + SCAN_DEADLINE
        while pending and time.monotonic() < until:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    chunk = found.setdefault(tp.topic, bytearray())
                    chunk += (record.key or b"") + (record.value or b"")
                    for name, value in record.headers:
                        chunk += name.encode() + value
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        assert not pending, f"could not read to the end of {pending}"
    finally:
        await consumer.stop()
    return {topic: bytes(data) for topic, data in found.items()}


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
        body: bytes = reply.read()
    return body


async def test_no_identity_on_any_topic_log_or_metrics_page(
    stack: Stack,
    submitted: list[tuple[intake_pb2.SubmitReportRequest, intake_pb2.SubmitReportResponse]],
) -> None:
    clue_ids = [response.clue_id for _, response in submitted]
    until = time.monotonic() + SCAN_DEADLINE
    while True:
        topics = await _all_topic_bytes(stack.kafka_bootstrap)
        everything = b"".join(topics.values())
        if all(clue.encode() in everything for clue in clue_ids):
            break
        assert time.monotonic() < until, "the clues never reached Kafka"
        await asyncio.sleep(1.0)
    assert "xiezuo.intake.clues" in topics
    pages = [
        (name, await asyncio.to_thread(_fetch, stack.metrics(name))) for name in stack.services
    ]
    for secret in _secrets([request for request, _ in submitted]):
        value = secret.encode()
        for topic, data in topics.items():
            assert value not in data, f"identity value on topic {topic}"
        for service in stack.services.values():
            assert value not in service.logs(), f"{service.name} logged an identity value"
        for name, page in pages:
            assert value not in page, f"identity value on the /metrics page of {name}"


async def test_receipt_guessing_is_locked_out(
    stack: Stack,
    intake: intake_pb2_grpc.IntakeServiceStub,
    submitted: list[tuple[intake_pb2.SubmitReportRequest, intake_pb2.SubmitReportResponse]],
) -> None:
    portal = _auth(stack, ["reporter_portal"], "portal")
    code = submitted[0][1].receipt_code

    def ask(receipt_code: str, caller: str) -> intake_pb2.GetReportStatusRequest:
        return intake_pb2.GetReportStatusRequest(
            receipt=intake_pb2.ReceiptCredentials(
                county_id=COUNTY, receipt_code=receipt_code, caller_ref=caller
            )
        )

    status = await intake.GetReportStatus(ask(code, "honest"), metadata=portal, timeout=TIMEOUT)
    assert status.status == intake_pb2.REPORT_STATUS_RECEIVED
    wrong = "9" * 16 if code != "9" * 16 else "8" * 16
    codes = []
    for _ in range(10):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await intake.GetReportStatus(ask(wrong, "guesser"), metadata=portal, timeout=TIMEOUT)
        codes.append(failed.value.code())
        if failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            break
    assert grpc.StatusCode.NOT_FOUND in codes
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as locked:
        await intake.GetReportStatus(ask(code, "guesser"), metadata=portal, timeout=TIMEOUT)
    assert locked.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Not the portal's role: denied before any look-up.
    outsider = _auth(stack, ["case_officer"], "someone")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await intake.GetReportStatus(ask(code, "x"), metadata=outsider, timeout=TIMEOUT)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_two_way_messages_through_the_receipt(
    stack: Stack,
    intake: intake_pb2_grpc.IntakeServiceStub,
    submitted: list[tuple[intake_pb2.SubmitReportRequest, intake_pb2.SubmitReportResponse]],
) -> None:
    portal = _auth(stack, ["reporter_portal"], "portal")
    officer = _auth(stack, ["case_officer"], "case-officer-m")
    response = submitted[1][1]
    receipt = intake_pb2.ReceiptCredentials(
        county_id=COUNTY, receipt_code=response.receipt_code, caller_ref="reporter-1"
    )
    await intake.SendReporterMessage(
        intake_pb2.SendReporterMessageRequest(
            access=intake_pb2.ReporterChannelAccess(receipt=receipt),
            body="I have more documents.",
            idempotency_key="m1",
        ),
        metadata=portal,
        timeout=TIMEOUT,
    )
    await intake.SendReporterMessage(
        intake_pb2.SendReporterMessageRequest(
            access=intake_pb2.ReporterChannelAccess(report_id=response.report_id),
            body="Please add them.",
            idempotency_key="m1",
        ),
        metadata=officer,
        timeout=TIMEOUT,
    )
    await intake.AddInformation(
        intake_pb2.AddInformationRequest(
            receipt=receipt,
            content="Bank slip attached.",
            attachments=[
                intake_pb2.AttachmentMetadata(
                    sha256="a" * 64, size_bytes=10, media_type="image/png"
                )
            ],
            idempotency_key="i1",
        ),
        metadata=portal,
        timeout=TIMEOUT,
    )
    seen = await intake.ListReporterMessages(
        intake_pb2.ListReporterMessagesRequest(
            access=intake_pb2.ReporterChannelAccess(receipt=receipt)
        ),
        metadata=portal,
        timeout=TIMEOUT,
    )
    assert [m.body for m in seen.messages] == [
        "I have more documents.",
        "Please add them.",
        "Bank slip attached.",
    ]
    assert [m.author for m in seen.messages] == [
        intake_pb2.MESSAGE_AUTHOR_REPORTER,
        intake_pb2.MESSAGE_AUTHOR_OFFICER,
        intake_pb2.MESSAGE_AUTHOR_REPORTER,
    ]


async def test_reveal_without_approval_is_denied_and_with_approval_works_once(
    stack: Stack,
    intake: intake_pb2_grpc.IntakeServiceStub,
    submitted: list[tuple[intake_pb2.SubmitReportRequest, intake_pb2.SubmitReportResponse]],
) -> None:
    request, response = submitted[2]
    officer = _auth(stack, ["case_officer"], "case-officer-a")
    other = _auth(stack, ["case_officer"], "case-officer-b")
    custodian = _auth(stack, ["custodian"], "custodian-c")
    filed = await intake.RequestIdentityReveal(
        intake_pb2.RequestIdentityRevealRequest(
            report_id=response.report_id, reason="Need to interview", idempotency_key="r1"
        ),
        metadata=officer,
        timeout=TIMEOUT,
    )
    reveal = intake_pb2.RevealIdentityRequest(reveal_request_id=filed.reveal_request_id)
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await intake.RevealIdentity(reveal, metadata=officer, timeout=TIMEOUT)
    assert early.value.code() == grpc.StatusCode.PERMISSION_DENIED
    decide = intake_pb2.DecideIdentityRevealRequest(
        reveal_request_id=filed.reveal_request_id,
        decision=intake_pb2.REVEAL_DECISION_APPROVE,
        reason="Justified",
        idempotency_key="d1",
    )
    with pytest.raises(grpc.aio.AioRpcError) as self_approval:
        await intake.DecideIdentityReveal(decide, metadata=officer, timeout=TIMEOUT)
    assert self_approval.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await intake.DecideIdentityReveal(decide, metadata=custodian, timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await intake.RevealIdentity(reveal, metadata=other, timeout=TIMEOUT)
    assert stranger.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as custodian_read:
        await intake.RevealIdentity(reveal, metadata=custodian, timeout=TIMEOUT)
    assert custodian_read.value.code() == grpc.StatusCode.PERMISSION_DENIED
    shown = await intake.RevealIdentity(reveal, metadata=officer, timeout=TIMEOUT)
    assert shown.reporter == request.reporter
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await intake.RevealIdentity(reveal, metadata=officer, timeout=TIMEOUT)
    assert twice.value.code() == grpc.StatusCode.PERMISSION_DENIED

    url = stack.database_url("intake").replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        actions = [
            (row["action"], row["actor"])
            for row in await connection.fetch(
                "SELECT action, actor FROM audit_entry WHERE record_id = $1 ORDER BY id",
                response.report_id,
            )
        ]
    finally:
        await connection.close()
    assert ("identity.reveal_requested", "case-officer-a") in actions
    assert ("identity.reveal_approved", "custodian-c") in actions
    assert actions.count(("identity.revealed", "case-officer-a")) == 1
