"""One trace follows a report: gRPC → intake DB → Kafka → cases consumer → cases DB.

The stack runs with XIEZUO_SQL_SPANS on (conftest); the statement spans are off by default.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from tests.e2e.conftest import Stack
from tests.e2e.otlp_collector import CollectedSpan, OtlpCollector, render_tree

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CLUES_TOPIC = "xiezuo.intake.clues"
SUBMIT_REPORT = "/xiezuo.intake.v1.IntakeService/SubmitReport"
CALL_TIMEOUT = 10.0
EVENTUAL_DEADLINE = 30.0

# A county and zone of our own, so spans and records of other tests never match ours.
RUN = uuid.uuid4().hex[:8]
COUNTY = f"county-trace-{RUN}"
ZONE = f"zone-trace-{RUN}"
TOWNSHIP = "township-1"


def _report(idempotency_key: str) -> intake_pb2.SubmitReportRequest:
    return intake_pb2.SubmitReportRequest(
        idempotency_key=idempotency_key,
        county_id=COUNTY,
        zone_id=ZONE,
        township_id=TOWNSHIP,
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name="Zhao Official",
            post="township head",
            unit="Dongshan township government",
            township_id=TOWNSHIP,
            village="Dongshan",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement"],
        content="Road-repair funds went to a company owned by the township head's brother.",
        reporter=intake_pb2.ReporterIdentity(
            full_name=f"Sun Reporter {RUN}",
            id_number=f"11010519{RUN[:4]}0307{RUN[4:8]}",
            phone=f"1392{RUN}",
            address=f"No. 9 Long Street {RUN}, Hometown",
        ),
    )


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


async def _wait_for_clue(
    stack: Stack, cases: cases_pb2_grpc.CaseServiceStub, clue_id: str
) -> cases_pb2.Clue:
    until = time.monotonic() + EVENTUAL_DEADLINE
    while True:
        try:
            reply = await cases.GetClue(
                cases_pb2.GetClueRequest(clue_id=clue_id),
                metadata=_reader(stack),
                timeout=CALL_TIMEOUT,
            )
            return reply.clue
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if time.monotonic() > until:
            pytest.fail(f"clue {clue_id} not in cases within {EVENTUAL_DEADLINE:.0f} s")
        await asyncio.sleep(0.2)


async def _outbox_row(stack: Stack, clue_id: str) -> asyncpg.Record:
    url = stack.database_url("intake").replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT event_id, traceparent FROM outbox_message WHERE subject = $1",
            clue_id,
            timeout=CALL_TIMEOUT,
        )
    finally:
        await connection.close()
    assert len(rows) == 1, rows
    return rows[0]


def _is_publish(span: CollectedSpan) -> bool:
    return (
        span.service == "xiezuo-intake"
        and span.kind == "SPAN_KIND_PRODUCER"
        and span.name == f"{CLUES_TOPIC} publish"
    )


def _is_consume(span: CollectedSpan) -> bool:
    return (
        span.service == "xiezuo-cases"
        and span.kind == "SPAN_KIND_CONSUMER"
        and span.name.startswith(CLUES_TOPIC)
    )


def _inserts_clue(span: CollectedSpan) -> bool:
    return (
        span.service == "xiezuo-cases"
        and span.is_db
        and "INSERT INTO clue " in " ".join(span.db_statement.split()) + " "
    )


def _ancestors(span: CollectedSpan, by_id: dict[str, CollectedSpan]) -> list[str]:
    """Span ids from `span`'s parent up to the trace's root."""
    chain: list[str] = []
    parent = span.parent_span_id
    while parent and parent not in chain:
        chain.append(parent)
        if parent not in by_id:
            break
        parent = by_id[parent].parent_span_id
    return chain


async def test_one_trace_spans_grpc_db_kafka_consumer_and_db_across_processes(
    stack: Stack,
    otlp_collector: OtlpCollector,
    intake: intake_pb2_grpc.IntakeServiceStub,
    cases: cases_pb2_grpc.CaseServiceStub,
) -> None:
    called_at = time.time_ns()
    response = await intake.SubmitReport(
        _report(f"trace-{RUN}"), metadata=_officer(stack), timeout=CALL_TIMEOUT
    )
    returned_at = time.time_ns()
    await _wait_for_clue(stack, cases, response.clue_id)
    outbox = await _outbox_row(stack, response.clue_id)

    # The server span of our call: the only SubmitReport served while we waited for it.
    def ours(span: CollectedSpan) -> bool:
        return (
            span.service == "xiezuo-intake"
            and span.kind == "SPAN_KIND_SERVER"
            and span.name == SUBMIT_REPORT
            and called_at <= span.start_ns <= span.end_ns <= returned_at
        )

    def complete(spans: list[CollectedSpan]) -> bool:
        return (
            any(_is_publish(s) for s in spans)
            and any(_is_consume(s) for s in spans)
            and any(_inserts_clue(s) for s in spans)
        )

    server: list[CollectedSpan] = []
    spans: list[CollectedSpan] = []
    until = time.monotonic() + EVENTUAL_DEADLINE
    while time.monotonic() < until:
        server = [span for span in otlp_collector.spans() if ours(span)]
        if len(server) == 1:
            spans = otlp_collector.trace(server[0].trace_id)
            if complete(spans):
                break
        await asyncio.sleep(0.2)

    assert len(server) == 1, (
        f"expected one {SUBMIT_REPORT} server span from xiezuo-intake, got {len(server)}; "
        f"{len(otlp_collector.spans())} spans received from "
        f"{sorted({s.service for s in otlp_collector.spans()})}"
    )
    root = server[0]
    tree = f"trace {root.trace_id}:\n{render_tree(spans)}"
    by_id = {span.span_id: span for span in spans}

    # One trace: the call is its root (no caller context), the outbox row carries it.
    assert root.parent_span_id == "", tree
    _, stored_trace_id, stored_parent_id, _ = outbox["traceparent"].split("-")
    assert stored_trace_id == root.trace_id, f"outbox traceparent {outbox['traceparent']}\n{tree}"

    # (a) intake's statements, inside the call.
    intake_db = [s for s in spans if s.service == "xiezuo-intake" and s.is_db]
    assert intake_db, f"no intake DB span in the trace\n{tree}"
    assert any("INSERT INTO report" in " ".join(s.db_statement.split()) for s in intake_db), tree
    assert any("INSERT INTO outbox_message" in " ".join(s.db_statement.split()) for s in intake_db)
    for span in intake_db:
        assert root.span_id in _ancestors(span, by_id), f"{span.name} outside the call\n{tree}"

    # (b) the relay's publish, child of the context the row stored (the call's span).
    publishes = [s for s in spans if _is_publish(s)]
    assert len(publishes) == 1, f"expected one publish span\n{tree}"
    publish = publishes[0]
    assert publish.attributes.get("messaging.message.id") == outbox["event_id"], tree
    assert publish.parent_span_id == stored_parent_id, tree
    assert publish.parent_span_id in by_id, f"publish span's parent not in the trace\n{tree}"
    assert publish.parent_span_id == root.span_id, tree

    # (c) cases' consumer span, continued from the traceparent header the relay injected.
    consumes = [s for s in spans if _is_consume(s)]
    assert len(consumes) == 1, f"expected one cases consumer span\n{tree}"
    consume = consumes[0]
    assert consume.name == f"{CLUES_TOPIC} process", tree
    assert consume.parent_span_id == publish.span_id, tree

    # (d) cases' INSERT INTO clue, inside the consumer span.
    clue_inserts = [s for s in spans if _inserts_clue(s)]
    assert len(clue_inserts) == 1, f"expected one INSERT INTO clue\n{tree}"
    assert consume.span_id in _ancestors(clue_inserts[0], by_id), tree

    # Only the two services this flow touches took part.
    # Every consumer of the clue joins the same trace (assessment counts clues too); nothing
    # outside the event's path does.
    services = {s.service for s in spans}
    assert {"xiezuo-intake", "xiezuo-cases"} <= services, tree
    assert services <= {"xiezuo-intake", "xiezuo-cases", "xiezuo-assessment"}, tree
    # Spans are shipped to operators: the reporter's identity must not ride along (statement
    # parameters are not recorded, so the INSERT INTO reporter_identity span carries no values).
    exported = repr([(s.name, s.attributes) for s in otlp_collector.spans()])
    reporter = _report("").reporter
    for secret in (reporter.full_name, reporter.id_number, reporter.phone, reporter.address):
        assert secret not in exported, "reporter identity reached the exported spans"
    print(tree)
