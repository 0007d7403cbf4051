"""JSON logs with trace ids, identity redaction, tracing setup and Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import propagate, trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.telemetry import (
    REDACTED,
    JsonFormatter,
    SensitiveFieldFilter,
    ServiceMetrics,
    configure_logging,
    configure_tracing,
    kafka_middlewares,
    shutdown_tracing,
    start_metrics_server,
)

# --------------------------------------------------------------------------- logging


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through our formatter and filter into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("cases"))
    handler.addFilter(SensitiveFieldFilter())
    logger = logging.getLogger("xiezuo.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_log_line_carries_the_current_span(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = json_log
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("file-case") as span:
        logger.info("case %s filed", "c-1", extra={"case_id": "c-1", "zone": "z-3", "n": 2})
    logger.warning("outside")

    inside, outside = _lines(buffer)
    ctx = span.get_span_context()
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")
    assert len(inside["trace_id"]) == 32 and inside["trace_id"] != "0" * 32
    assert inside["message"] == "case c-1 filed"
    assert (inside["level"], inside["logger"], inside["service"]) == (
        "INFO",
        "xiezuo.test.json",
        "cases",
    )
    assert (inside["case_id"], inside["zone"], inside["n"]) == ("c-1", "z-3", 2)
    ts = datetime.fromisoformat(inside["ts"])
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 60
    assert (outside["trace_id"], outside["span_id"], outside["level"]) == ("", "", "WARNING")


def test_sensitive_extras_never_reach_the_output(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = json_log
    logger.info(
        "report received",
        extra={
            "reporter_name": "张三",
            "phone": "13800000000",
            "ID_Number": "330102199001011234",
            "receipt_code": "RC-7788",
            "address": "某村3组",
            "report_id": "r-9",
        },
    )

    raw = buffer.getvalue()
    for secret in ("张三", "13800000000", "330102199001011234", "RC-7788", "某村3组"):
        assert secret not in raw
    (line,) = _lines(buffer)
    assert line["report_id"] == "r-9"
    for key in ("reporter_name", "phone", "ID_Number", "receipt_code", "address"):
        assert line[key] == REDACTED


def test_complex_extras_are_not_stringified(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    class Report:
        def __repr__(self) -> str:
            return "Report(reporter='李四')"

    logger, buffer = json_log
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed", extra={"report": Report(), "ctx": {"phone": "1380"}})

    raw = buffer.getvalue()
    assert "李四" not in raw and "1380" not in raw
    (line,) = _lines(buffer)
    assert (line["report"], line["ctx"]) == ("<Report>", "<dict>")
    assert "RuntimeError: boom" in line["exc_info"]


def test_configure_logging_filters_records_from_child_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("intake", "debug")
    again = configure_logging("intake", "debug")
    try:
        assert handler not in root.handlers  # a second call replaces, never duplicates
        logging.getLogger("services.intake.deep.child").debug(
            "stored", extra={"full_name": "王五", "clue_id": "k-1"}
        )
    finally:
        root.removeHandler(again)
        root.setLevel(level)

    ours = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "k-1" in line]
    assert len(ours) == 1
    assert ours[0]["service"] == "intake"
    assert ours[0]["full_name"] == REDACTED
    assert ours[0]["logger"] == "services.intake.deep.child"


# --------------------------------------------------------------------------- tracing


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An in-process OTLP trace collector that keeps what it receives."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()

    def Export(  # the gRPC method name, so not snake_case
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


def test_tracing_exports_spans_over_otlp_with_the_service_name() -> None:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        provider = configure_tracing("cases", f"http://127.0.0.1:{port}")
        with provider.get_tracer("test").start_as_current_span("decide-case") as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        shutdown_tracing(provider)
        assert collector.received.wait(10)
    finally:
        server.stop(None)

    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    ctx = span.get_span_context()
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert int(flags, 16) & 1  # sampled (the SDK may also set the "random trace id" bit)
    (resource_spans,) = collector.requests[0].resource_spans
    attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attrs["service.name"] == "xiezuo-cases"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["decide-case"]


def test_tracing_without_endpoint_still_gives_real_ids() -> None:
    provider = configure_tracing("staffing", None)
    try:
        assert provider.resource.attributes["service.name"] == "xiezuo-staffing"
        with provider.get_tracer("test").start_as_current_span("draw-team") as span:
            assert span.get_span_context().is_valid
    finally:
        shutdown_tracing(provider)


# --------------------------------------------------------------------------- metrics


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Fetch /metrics over HTTP and index samples by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def test_metrics_endpoint_shows_each_zone_on_its_own() -> None:
    metrics = ServiceMetrics("cases")
    ServiceMetrics("cases")  # a second instance must not collide: each owns its registry
    metrics.event_consumed("xiezuo.intake.clue_registered.v1", "z-1", "processed")
    metrics.event_consumed("xiezuo.intake.clue_registered.v1", "z-1", "processed")
    metrics.event_consumed("xiezuo.intake.clue_registered.v1", "z-2", "duplicate")
    metrics.outbox_event_published("xiezuo.cases.case_filed.v1", "z-2")
    metrics.set_outbox_pending(7)
    metrics.observe_publish(0.02)
    metrics.observe_handle("xiezuo.intake.clue_registered.v1", 0.3)
    metrics.grpc_request("/xiezuo.cases.v1.Cases/FileCase", "OK", 0.012)

    server, port = start_metrics_server(metrics.registry, "127.0.0.1", 0)
    try:
        assert port > 0
        samples = _scrape(port)
    finally:
        server.stop()

    clue = ("event_type", "xiezuo.intake.clue_registered.v1")
    consumed = "xiezuo_events_consumed_total"
    svc = ("service", "cases")
    assert samples[(consumed, (clue, ("outcome", "processed"), svc, ("zone", "z-1")))] == 2
    assert samples[(consumed, (clue, ("outcome", "duplicate"), svc, ("zone", "z-2")))] == 1
    published = ("event_type", "xiezuo.cases.case_filed.v1")
    assert samples[("xiezuo_outbox_published_total", (published, svc, ("zone", "z-2")))] == 1
    assert samples[("xiezuo_outbox_pending", (svc,))] == 7
    assert samples[("xiezuo_outbox_publish_seconds_count", (svc,))] == 1
    assert samples[("xiezuo_event_handle_seconds_sum", (clue, svc))] == pytest.approx(0.3)
    grpc_key = (("code", "OK"), ("method", "/xiezuo.cases.v1.Cases/FileCase"), svc)
    assert samples[("xiezuo_grpc_requests_total", grpc_key)] == 1
    assert samples[("xiezuo_grpc_server_handling_seconds_count", grpc_key)] == 1
    code, method = grpc_key[:2]
    bucket = "xiezuo_grpc_server_handling_seconds_bucket"
    assert samples[(bucket, (code, ("le", "0.025"), method, svc))] == 1
    assert samples[(bucket, (code, ("le", "0.01"), method, svc))] == 0

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_unknown_consume_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        ServiceMetrics("cases").event_consumed("t", "z-1", "exploded")  # type: ignore[arg-type]


async def test_kafka_middlewares_trace_and_count_into_our_registry() -> None:
    metrics = ServiceMetrics("cases")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    middlewares = kafka_middlewares(metrics.registry, provider, service_name="cases")
    assert [type(m) for m in middlewares] == [KafkaTelemetryMiddleware, KafkaPrometheusMiddleware]

    broker = KafkaBroker(middlewares=middlewares)
    seen: list[str] = []

    @broker.subscriber("xiezuo.test.events")
    async def handle(body: str) -> None:
        seen.append(body)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish("hello", "xiezuo.test.events", key=b"z-1")

    assert seen == ["hello"]
    kinds = {s.kind for s in exporter.get_finished_spans()}
    assert {trace.SpanKind.PRODUCER, trace.SpanKind.CONSUMER} <= kinds
    received = [
        s
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "faststream_received_messages_total"
    ]
    assert [(s.labels["app_name"], s.labels["handler"], s.value) for s in received] == [
        ("xiezuo-cases", "xiezuo.test.events", 1.0)
    ]
