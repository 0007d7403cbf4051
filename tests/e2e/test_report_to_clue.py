"""A report travels intake → outbox → Kafka → cases, across real service processes."""

from __future__ import annotations

import asyncio
import calendar
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.runtime.grpc.errors import field_violations
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT, Stack
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CLUE_TYPE = "xiezuo.intake.clue_registered.v1"
CLUES_TOPIC = "xiezuo.intake.clues"
CALL_TIMEOUT = 10.0
EVENTUAL_DEADLINE = 30.0
CLI_TIMEOUT = 60.0
XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
IDENTITY_KEYS = frozenset({"reporter", "full_name", "id_number", "phone", "address"})


# One county per run, so records other tests leave on the shared broker never match ours.
RUN = uuid.uuid4().hex[:8]
COUNTY = f"county-{RUN}"
ZONE = f"zone-{RUN}"
TOWNSHIP = "township-1"
REPORTER = intake_pb2.ReporterIdentity(
    full_name=f"Wang Reporter {RUN}",
    id_number=f"11010519{RUN[:4]}0307{RUN[4:8]}",
    phone=f"1391{RUN}",
    address=f"No. 7 Quiet Lane {RUN}, Hometown",
)


@dataclass(frozen=True)
class Submitted:
    """The real-name report the flow tests follow."""

    request: intake_pb2.SubmitReportRequest
    response: intake_pb2.SubmitReportResponse


def _report(idempotency_key: str, *, reporter: bool = True) -> intake_pb2.SubmitReportRequest:
    request = intake_pb2.SubmitReportRequest(
        idempotency_key=idempotency_key,
        county_id=COUNTY,
        zone_id=ZONE,
        township_id=TOWNSHIP,
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name="Li Official",
            post="village party secretary",
            unit="Hexi village committee",
            township_id=TOWNSHIP,
            village="Hexi",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement", "favoritism_in_subsidies"],
        content="Poverty-relief subsidies were paid to the secretary's relatives.",
    )
    if reporter:
        request.reporter.CopyFrom(REPORTER)
    return request


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _officer(stack: Stack) -> tuple[tuple[str, str], ...]:
    return _auth(stack.token(roles=["intake_officer"], county_id=COUNTY, zone_ids=[ZONE]))


def _reader(stack: Stack) -> tuple[tuple[str, str], ...]:
    return _auth(stack.token(roles=["case_officer"], county_id=COUNTY, zone_ids=["*"]))


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[intake_pb2_grpc.IntakeServiceStub]:
    async with grpc.aio.insecure_channel(stack.grpc("intake")) as channel:
        yield intake_pb2_grpc.IntakeServiceStub(channel)


@pytest.fixture(scope="module")
async def cases(stack: Stack) -> AsyncIterator[cases_pb2_grpc.CaseServiceStub]:
    async with grpc.aio.insecure_channel(stack.grpc("cases")) as channel:
        yield cases_pb2_grpc.CaseServiceStub(channel)


@pytest.fixture(scope="module")
async def submitted(stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub) -> Submitted:
    request = _report(f"letter-{RUN}")
    response = await intake.SubmitReport(request, metadata=_officer(stack), timeout=CALL_TIMEOUT)
    return Submitted(request, response)


async def _get_clue(
    stack: Stack, cases: cases_pb2_grpc.CaseServiceStub, clue_id: str
) -> cases_pb2.Clue:
    async def probe() -> cases_pb2.Clue | None:
        try:
            reply = await cases.GetClue(
                cases_pb2.GetClueRequest(clue_id=clue_id),
                metadata=_reader(stack),
                timeout=CALL_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.clue

    return await eventually(probe, f"clue {clue_id} in cases", within=EVENTUAL_DEADLINE)


def _one_month_after(moment: datetime) -> datetime:
    # On the county's dates (Beijing time), as cases counts it, handed back in UTC.
    moment = moment.astimezone(ZoneInfo("Asia/Shanghai"))
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day).astimezone(UTC)


async def _query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await connection.fetch(sql, *args, timeout=CALL_TIMEOUT))
    finally:
        await connection.close()


async def _scalar(url: str, sql: str, *args: Any) -> Any:
    rows = await _query(url, sql, *args)
    return rows[0][0]


async def _samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` on a /metrics page."""

    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=CALL_TIMEOUT) as reply:
            body: bytes = reply.read()
        return body.decode()

    text = await asyncio.to_thread(fetch)
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def _xiezuo(stack: Stack, service: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(XIEZUO),
        *args,
        env=stack.cli_env(service),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"xiezuo {' '.join(args)} did not finish within {CLI_TIMEOUT:.0f} s")
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _identity_keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {key for key in value if key.lower() in IDENTITY_KEYS}
        for inner in value.values():
            found |= _identity_keys_in(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_identity_keys_in(inner) for inner in value))
    return set()


# --------------------------------------------------------------------------------- 1


async def test_real_name_report_becomes_a_registered_clue_in_cases(
    stack: Stack, cases: cases_pb2_grpc.CaseServiceStub, submitted: Submitted
) -> None:
    response = submitted.response
    assert response.report_id
    assert response.clue_id
    assert len(response.receipt_code) == 16
    assert response.receipt_code.isdigit()
    assert response.HasField("registered_at")

    clue = await _get_clue(stack, cases, response.clue_id)

    registered_at = response.registered_at.ToDatetime(tzinfo=UTC)
    assert clue.clue_id == response.clue_id
    assert clue.source_report_id == response.report_id
    assert (clue.county_id, clue.zone_id, clue.township_id) == (COUNTY, ZONE, TOWNSHIP)
    assert clue.channel == "letter"
    assert list(clue.allegation_categories) == list(submitted.request.allegation_categories)
    assert clue.status == cases_pb2.CLUE_STATUS_REGISTERED
    assert clue.registered_at.ToDatetime(tzinfo=UTC) == registered_at
    assert clue.disposal_due_at.ToDatetime(tzinfo=UTC) == _one_month_after(registered_at)
    assert clue.rule_version


# --------------------------------------------------------------------------------- 2


async def test_clue_event_on_kafka_is_a_cloudevent_without_reporter_identity(
    stack: Stack, submitted: Submitted
) -> None:
    clue_id = submitted.response.clue_id
    consumer = AIOKafkaConsumer(
        CLUES_TOPIC,
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=f"e2e-raw-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def probe() -> ConsumerRecord[bytes, bytes] | None:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers)
                    if headers.get("ce_subject") == clue_id.encode():
                        return record
                    try:
                        payload = json.loads(record.value or b"")
                    except ValueError:
                        continue
                    if isinstance(payload, dict) and payload.get("clue_id") == clue_id:
                        return record
            return None

        record = await eventually(
            probe, f"record of {clue_id} on {CLUES_TOPIC}", within=EVENTUAL_DEADLINE
        )
    finally:
        await consumer.stop()

    headers = {name: value.decode() for name, value in record.headers}
    assert headers["ce_id"]
    assert headers["ce_type"] == CLUE_TYPE
    assert headers["ce_source"]
    assert datetime.fromisoformat(headers["ce_time"].replace("Z", "+00:00")).tzinfo is not None
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert headers.get("traceparent")
    assert headers.get("ce_subject") == clue_id
    assert record.key == f"{COUNTY}:{ZONE}".encode()

    assert record.value is not None
    payload = json.loads(record.value)
    assert payload["clue_id"] == clue_id
    assert payload["report_id"] == submitted.response.report_id
    assert (payload["county_id"], payload["zone_id"]) == (COUNTY, ZONE)
    assert _identity_keys_in(payload) == set()
    published = record.value + b"".join(name.encode() + value for name, value in record.headers)
    for secret in (REPORTER.full_name, REPORTER.id_number, REPORTER.phone, REPORTER.address):
        assert secret.encode() not in published, "reporter identity leaked onto Kafka"
        # Never logged either, by any service.
        for service in stack.services.values():
            assert secret.encode() not in service.logs(), f"{service.name} logged the identity"


# --------------------------------------------------------------------------------- 3


async def test_rejected_calls_store_nothing(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub, submitted: Submitted
) -> None:
    url = stack.database_url("intake")
    count_sql = "SELECT (SELECT count(*) FROM report), (SELECT count(*) FROM outbox_message)"
    before = tuple(await _query(url, count_sql))

    with pytest.raises(grpc.aio.AioRpcError) as no_token:
        await intake.SubmitReport(_report(f"anon-{uuid.uuid4().hex}"), timeout=CALL_TIMEOUT)
    assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED

    other_county = _auth(
        stack.token(roles=["intake_officer"], county_id=f"other-{RUN}", zone_ids=["*"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await intake.SubmitReport(
            _report(f"foreign-{uuid.uuid4().hex}"), metadata=other_county, timeout=CALL_TIMEOUT
        )
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED

    malformed = _report(f"bad-{uuid.uuid4().hex}")
    malformed.ClearField("subject")
    malformed.content = ""
    malformed.allegation_categories[:] = ["Not-A-Code"]
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await intake.SubmitReport(malformed, metadata=_officer(stack), timeout=CALL_TIMEOUT)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(field_violations(invalid.value))
    assert set(violations) == {"subject", "content", "allegation_categories[0]"}, violations
    assert "required" in violations["subject"]
    assert "required" in violations["content"]
    assert "lower_snake_case" in violations["allegation_categories[0]"]

    after = tuple(await _query(url, count_sql))
    assert after == before


# --------------------------------------------------------------------------------- 4


async def test_same_idempotency_key_registers_one_report_and_one_clue(
    stack: Stack,
    intake: intake_pb2_grpc.IntakeServiceStub,
    cases: cases_pb2_grpc.CaseServiceStub,
) -> None:
    key = f"retry-{uuid.uuid4().hex}"
    first = await intake.SubmitReport(_report(key), metadata=_officer(stack), timeout=CALL_TIMEOUT)
    second = await intake.SubmitReport(_report(key), metadata=_officer(stack), timeout=CALL_TIMEOUT)
    assert (second.report_id, second.clue_id) == (first.report_id, first.clue_id)
    # The receipt exists only as a hash, so a replay cannot show it again.
    assert len(first.receipt_code) == 16 and second.receipt_code == ""

    await _get_clue(stack, cases, first.clue_id)
    intake_url, cases_url = stack.database_url("intake"), stack.database_url("cases")
    assert (
        await _scalar(
            intake_url,
            "SELECT count(*) FROM report WHERE county_id = $1 AND idempotency_key = $2",
            COUNTY,
            key,
        )
        == 1
    )
    assert (
        await _scalar(
            intake_url, "SELECT count(*) FROM outbox_message WHERE subject = $1", first.clue_id
        )
        == 1
    )
    assert (
        await _scalar(cases_url, "SELECT count(*) FROM clue WHERE clue_id = $1", first.clue_id) == 1
    )


async def test_a_reused_key_neither_hides_a_new_report_nor_leaks_another_zone(
    stack: Stack, intake: intake_pb2_grpc.IntakeServiceStub
) -> None:
    key = f"reuse-{uuid.uuid4().hex}"
    await intake.SubmitReport(_report(key), metadata=_officer(stack), timeout=CALL_TIMEOUT)

    different = _report(key)
    different.content = "A different matter entirely."
    with pytest.raises(grpc.aio.AioRpcError) as conflict:
        await intake.SubmitReport(different, metadata=_officer(stack), timeout=CALL_TIMEOUT)
    assert conflict.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # An officer of another zone replaying the key (for their own zone) learns nothing.
    other_zone = _report(key)
    other_zone.zone_id = f"{ZONE}-other"
    officer_elsewhere = _auth(
        stack.token(roles=["intake_officer"], county_id=COUNTY, zone_ids=[f"{ZONE}-other"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await intake.SubmitReport(other_zone, metadata=officer_elsewhere, timeout=CALL_TIMEOUT)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "clue" not in (denied.value.details() or "")


# --------------------------------------------------------------------------------- 5


async def test_every_service_is_healthy_without_a_token(stack: Stack) -> None:
    for service in SERVICES:
        async with grpc.aio.insecure_channel(stack.grpc(service)) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_metrics_count_the_published_and_consumed_clue_event(
    stack: Stack, cases: cases_pb2_grpc.CaseServiceStub, submitted: Submitted
) -> None:
    await _get_clue(stack, cases, submitted.response.clue_id)

    async def published() -> float | None:
        total = sum(
            value
            for labels, value in await _samples(
                stack.metrics("intake"), "xiezuo_outbox_published_total"
            )
            if labels.get("zone") == ZONE and labels.get("event_type") == CLUE_TYPE
        )
        return total or None

    async def processed() -> float | None:
        total = sum(
            value
            for labels, value in await _samples(
                stack.metrics("cases"), "xiezuo_events_consumed_total"
            )
            if labels.get("outcome") == "processed"
            and labels.get("zone") == ZONE
            and labels.get("event_type") == CLUE_TYPE
        )
        return total or None

    published_count = await eventually(
        published, f"intake's published counter for zone {ZONE}", within=EVENTUAL_DEADLINE
    )
    assert published_count >= 1
    processed_count = await eventually(
        processed, f"cases' processed counter for zone {ZONE}", within=EVENTUAL_DEADLINE
    )
    assert processed_count >= 1


# --------------------------------------------------------------------------------- 6


async def test_audit_chains_verify_and_tampering_is_detected(
    stack: Stack, cases: cases_pb2_grpc.CaseServiceStub, submitted: Submitted
) -> None:
    # The clue's registration and the GetClue reads put entries on cases' chain.
    await _get_clue(stack, cases, submitted.response.clue_id)
    for service in ("intake", "cases"):
        code, out, err = await _xiezuo(stack, service, "audit", "verify", service, "--json")
        assert code == 0, f"{service}: {out}{err}"
        result = json.loads(out)
        assert result["ok"] is True
        assert result["entries_checked"] >= 1

    url = stack.database_url("cases")
    entry_id, detail, county_id, seq = (
        await _query(url, "SELECT id, detail, county_id, seq FROM audit_entry ORDER BY id LIMIT 1")
    )[0]
    await _query(url, "UPDATE audit_entry SET detail = $1 WHERE id = $2", detail + " ", entry_id)
    try:
        code, out, err = await _xiezuo(stack, "cases", "audit", "verify", "cases", "--json")
        assert code == 1, f"tampered chain passed: {out}{err}"
        result = json.loads(out)
        assert result["ok"] is False
        assert result["problems"][0]["chain"] == county_id
        assert result["problems"][0]["seq"] == seq
    finally:
        # Put the evidence back so later users of the session's stack see an intact chain.
        await _query(url, "UPDATE audit_entry SET detail = $1 WHERE id = $2", detail, entry_id)
    code, out, err = await _xiezuo(stack, "cases", "audit", "verify", "cases")
    assert code == 0, f"restored chain failed: {out}{err}"
