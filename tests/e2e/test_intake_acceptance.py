"""Acceptance, duplicates and routing over gRPC against the running stack."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaProducer
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.contracts.staffing import TownshipPlaced
from services.runtime.envelope import Envelope
from services.runtime.grpc.errors import field_violations
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RUN = uuid.uuid4().hex[:8]
COUNTY, ZONE = f"county-a{RUN}", f"zone-a{RUN}"
TIMEOUT = 10.0
EVENTUAL = 30.0


def _report(
    key: str, *, name: str, category: str = "embezzlement"
) -> intake_pb2.SubmitReportRequest:
    return intake_pb2.SubmitReportRequest(
        idempotency_key=key,
        county_id=COUNTY,
        zone_id=ZONE,
        township_id="township-a",
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name=name,
            post="village party secretary",
            unit="Nanpo village committee",
            township_id="township-a",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=[category],
        content="Collective land was leased to the secretary's cousin.",
        reporter=intake_pb2.ReporterIdentity(
            full_name=f"Acceptance Reporter {RUN}", phone=f"1380{RUN}", address="Somewhere"
        ),
    )


def _auth(stack: Stack, roles: list[str], subject: str = "desk") -> tuple[tuple[str, str], ...]:
    token = stack.token(roles=roles, county_id=COUNTY, zone_ids=[ZONE], subject=subject)
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[intake_pb2_grpc.IntakeServiceStub]:
    async with grpc.aio.insecure_channel(stack.grpc("intake")) as channel:
        yield intake_pb2_grpc.IntakeServiceStub(channel)


async def _event_types(stack: Stack, report_id: str) -> list[str]:
    url = stack.database_url("intake").replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT event_type FROM outbox_message WHERE subject = $1 ORDER BY id", report_id
        )
    finally:
        await connection.close()
    return [row["event_type"] for row in rows]


async def test_decide_acceptance_tells_the_reporter_and_publishes_once(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub
) -> None:
    officer = _auth(stack, ["intake_officer"])
    submitted = await intake.SubmitReport(
        _report(f"accept-{RUN}", name=f"Accepted {RUN}"), metadata=officer, timeout=TIMEOUT
    )
    assert submitted.status == intake_pb2.REPORT_STATUS_RECEIVED and submitted.zone_id == ZONE

    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await intake.DecideAcceptance(
            intake_pb2.DecideAcceptanceRequest(
                report_id=submitted.report_id,
                outcome=intake_pb2.ACCEPTANCE_OUTCOME_NOT_ACCEPT,
                idempotency_key="d0",
            ),
            metadata=officer,
            timeout=TIMEOUT,
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(dict(field_violations(invalid.value))) == {"rejection_ground", "reason"}

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await intake.DecideAcceptance(
            intake_pb2.DecideAcceptanceRequest(
                report_id=submitted.report_id,
                outcome=intake_pb2.ACCEPTANCE_OUTCOME_ACCEPT,
                idempotency_key="d1",
            ),
            metadata=_auth(stack, ["case_officer"]),
            timeout=TIMEOUT,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    accept = intake_pb2.DecideAcceptanceRequest(
        report_id=submitted.report_id,
        outcome=intake_pb2.ACCEPTANCE_OUTCOME_ACCEPT,
        idempotency_key="d1",
    )
    decided = await intake.DecideAcceptance(accept, metadata=officer, timeout=TIMEOUT)
    assert decided.status == intake_pb2.REPORT_STATUS_ACCEPTED
    again = await intake.DecideAcceptance(accept, metadata=officer, timeout=TIMEOUT)
    assert again.status == intake_pb2.REPORT_STATUS_ACCEPTED
    with pytest.raises(grpc.aio.AioRpcError) as changed:
        await intake.DecideAcceptance(
            intake_pb2.DecideAcceptanceRequest(
                report_id=submitted.report_id,
                outcome=intake_pb2.ACCEPTANCE_OUTCOME_FORWARD,
                forward_to_body="City commission",
                idempotency_key="d2",
            ),
            metadata=officer,
            timeout=TIMEOUT,
        )
    assert changed.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    portal = _auth(stack, ["reporter_portal"], "portal")
    receipt = intake_pb2.ReceiptCredentials(
        county_id=COUNTY, receipt_code=submitted.receipt_code, caller_ref="reporter"
    )
    status = await intake.GetReportStatus(
        intake_pb2.GetReportStatusRequest(receipt=receipt), metadata=portal, timeout=TIMEOUT
    )
    assert status.status == intake_pb2.REPORT_STATUS_ACCEPTED
    messages = await intake.ListReporterMessages(
        intake_pb2.ListReporterMessagesRequest(
            access=intake_pb2.ReporterChannelAccess(receipt=receipt)
        ),
        metadata=portal,
        timeout=TIMEOUT,
    )
    assert [(m.author, m.body) for m in messages.messages] == [
        (intake_pb2.MESSAGE_AUTHOR_SYSTEM, "Your report has been accepted and will be handled.")
    ]
    assert await _event_types(stack, submitted.report_id) == ["xiezuo.intake.report_accepted.v1"]


async def test_a_repeat_links_and_a_near_duplicate_waits_for_an_officer(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub
) -> None:
    officer = _auth(stack, ["intake_officer"])
    name = f"Repeated {RUN}"
    first = await intake.SubmitReport(
        _report(f"dup-1-{RUN}", name=name), metadata=officer, timeout=TIMEOUT
    )
    repeat = await intake.SubmitReport(
        _report(f"dup-2-{RUN}", name=name.upper()), metadata=officer, timeout=TIMEOUT
    )
    assert not first.linked
    assert repeat.linked and repeat.clue_id == first.clue_id
    assert repeat.report_id != first.report_id
    assert await _event_types(stack, repeat.report_id) == ["xiezuo.intake.report_linked.v1"]

    similar = await intake.SubmitReport(
        _report(f"dup-3-{RUN}", name=name, category="bribery"), metadata=officer, timeout=TIMEOUT
    )
    assert not similar.linked and similar.clue_id != first.clue_id
    listed = await intake.ListDuplicateCandidates(
        intake_pb2.ListDuplicateCandidatesRequest(county_id=COUNTY, pending_only=True),
        metadata=officer,
        timeout=TIMEOUT,
    )
    [flag] = [c for c in listed.candidates if c.report_id == similar.report_id]
    assert flag.similar_clue_id == first.clue_id
    assert flag.state == intake_pb2.DUPLICATE_STATE_PENDING
    decided = await intake.DecideDuplicate(
        intake_pb2.DecideDuplicateRequest(
            candidate_id=flag.candidate_id,
            decision=intake_pb2.DUPLICATE_DECISION_KEEP_SEPARATE,
            reason="A different fund",
            idempotency_key="k1",
        ),
        metadata=officer,
        timeout=TIMEOUT,
    )
    assert decided.candidate.state == intake_pb2.DUPLICATE_STATE_KEPT_SEPARATE
    with pytest.raises(grpc.aio.AioRpcError) as flipped:
        await intake.DecideDuplicate(
            intake_pb2.DecideDuplicateRequest(
                candidate_id=flag.candidate_id,
                decision=intake_pb2.DUPLICATE_DECISION_LINK,
                reason="Changed my mind",
                idempotency_key="k2",
            ),
            metadata=officer,
            timeout=TIMEOUT,
        )
    assert flipped.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_township_placed_by_staffing_routes_reports_without_a_zone(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub
) -> None:
    county, zone = f"county-r{RUN}", f"zone-r{RUN}"
    event = TownshipPlaced(
        county_id=county,
        zone_id=zone,
        township_id="township-r",
        township_name="Beishan",
        effective_from=date(2020, 1, 1),
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/staffing",
        time=datetime.now(UTC),
        county_id=county,
        zone_id=zone,
        data=event.model_dump_json().encode(),
        subject=event.subject_id(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            TownshipPlaced.topic,
            envelope.data,
            key=event.partition_key().encode(),
            headers=envelope.headers(),
        )
    finally:
        await producer.stop()

    token = stack.token(roles=["intake_officer"], county_id=county, zone_ids=[zone])
    request = _report(f"routed-{RUN}", name=f"Routed {RUN}")
    request.county_id, request.zone_id = county, ""
    request.township_id = request.subject.township_id = "township-r"
    until = time.monotonic() + EVENTUAL
    while True:
        try:
            routed = await intake.SubmitReport(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=TIMEOUT
            )
            break
        except grpc.aio.AioRpcError as error:
            # Until intake has consumed the placement the township is in no zone.
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert time.monotonic() < until, "the placement never reached intake"
            await asyncio.sleep(0.5)
    assert routed.zone_id == zone

    wrong = _report(f"misrouted-{RUN}", name=f"Misrouted {RUN}")
    wrong.county_id, wrong.zone_id = county, f"{zone}-other"
    wrong.township_id = wrong.subject.township_id = "township-r"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await intake.SubmitReport(
            wrong, metadata=(("authorization", f"Bearer {token}"),), timeout=TIMEOUT
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "belongs to zone" in dict(field_violations(refused.value))["zone_id"]
