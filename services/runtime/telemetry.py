"""Tracing, JSON logging and Prometheus metrics for one service process."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, get_args
from uuid import UUID
from wsgiref.simple_server import WSGIServer

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

# --------------------------------------------------------------------------- tracing


def configure_tracing(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """Build an SDK TracerProvider for this service and install it as the global one."""
    resource = Resource.create({SERVICE_NAME: f"xiezuo-{service_name}"})
    provider = TracerProvider(resource=resource)
    if otlp_endpoint:
        # TLS or not follows the endpoint scheme (http:// is insecure) and OTEL_EXPORTER_OTLP_*.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    # Without an exporter spans are still real (valid ids), so logs can carry trace ids.
    # W3C traceparent is what the outbox stores and Kafka headers carry; baggage stays as the
    # OTel default has it.  Set explicitly so an env override cannot silently change the format.
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    # The OTel API allows one global provider per process and warns on a second one; a later
    # call (tests, several services in one process) gets a provider to pass around explicitly.
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing(provider: TracerProvider) -> None:
    """Flush pending spans and stop the provider's exporters."""
    provider.force_flush()
    provider.shutdown()


# --------------------------------------------------------------------------- logging

# Field names that could carry the reporter's identity.  The identity must never reach a log
# (logs are shipped, indexed and read by operators who have no right to it; a leak is an
# offence under whistleblower protection), so these are redacted before any handler sees them.
SENSITIVE_KEYS = frozenset(
    {
        "reporter",
        "full_name",
        "real_name",
        "name_of_reporter",
        "id_number",
        "id_card",
        "identity",
        "identity_number",
        "phone",
        "phone_number",
        "mobile",
        "telephone",
        "email",
        "address",
        "home_address",
        "receipt_code",
        "contact",
    }
)
REDACTED = "[redacted]"


def is_sensitive_key(key: str) -> bool:
    """Tell whether a field name may carry the reporter's identity."""
    k = key.lower()
    # Any reporter_* field (reporter_name, reporter_phone, ...) is identity by construction.
    return k in SENSITIVE_KEYS or k.startswith("reporter")


# Attributes every LogRecord has; anything else on a record came from `extra={...}`.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class SensitiveFieldFilter(logging.Filter):
    """Redact `extra` fields whose names may carry the reporter's identity."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Overwrite sensitive extras in place and keep the record."""
        for key in list(record.__dict__):
            if key not in _RECORD_ATTRS and is_sensitive_key(key):
                # Redacted rather than dropped: the marker shows a caller tried, so it gets fixed.
                setattr(record, key, REDACTED)
        return True


def _json_value(value: Any) -> Any:
    """Return a JSON-safe simple value, or a type marker for anything else."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return _json_value(value.value)
    # Complex objects are never stringified: their repr could embed identity fields that the
    # key-based filter cannot see (a Report, a dict holding a phone number).
    return f"<{type(value).__name__}>"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object with service and trace context."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record, its current span ids and its simple extras."""
        doc: dict[str, Any] = {
            key: _json_value(value)
            for key, value in record.__dict__.items()
            if key not in _RECORD_ATTRS and not key.startswith("_")
        }
        ctx = trace.get_current_span().get_span_context()
        doc.update(
            ts=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
            service=self.service_name,
            trace_id=format(ctx.trace_id, "032x") if ctx.is_valid else "",
            span_id=format(ctx.span_id, "016x") if ctx.is_valid else "",
        )
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False)


_HANDLER_NAME = "xiezuo-json"


def configure_logging(service_name: str, level: str = "INFO") -> logging.Handler:
    """Send all logging as JSON lines to stderr, with reporter identity redacted."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter(service_name))
    # On the handler, not a logger: logger filters skip records propagated from child loggers.
    handler.addFilter(SensitiveFieldFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


# --------------------------------------------------------------------------- metrics

# 5 ms to 10 s: a read answers in milliseconds; the slowest writes wait on a lock or a flush.
GRPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ConsumeOutcome = Literal["processed", "duplicate", "ignored", "dead_lettered", "retried"]
_OUTCOMES = frozenset(get_args(ConsumeOutcome))


class ServiceMetrics:
    """Our own Prometheus metrics for one service, in a registry of their own."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        # A private registry, not the global one, so tests and in-process runs can build several.
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # zone is a label because each zone's load must be seen on its own; zones are bounded
        # (tens per county).  Ids (case, clue, event) are never labels: unbounded cardinality.
        self.outbox_pending = Gauge(
            "xiezuo_outbox_pending", "Outbox rows not yet published.", ["service"], registry=r
        )
        self.outbox_published = Counter(
            "xiezuo_outbox_published_total",
            "Outbox events published to Kafka.",
            ["service", "event_type", "zone"],
            registry=r,
        )
        self.outbox_publish_seconds = Histogram(
            "xiezuo_outbox_publish_seconds",
            "Time to publish one outbox batch.",
            ["service"],
            registry=r,
        )
        self.events_consumed = Counter(
            "xiezuo_events_consumed_total",
            "Events taken from Kafka, by what became of them.",
            ["service", "event_type", "zone", "outcome"],
            registry=r,
        )
        self.event_handle_seconds = Histogram(
            "xiezuo_event_handle_seconds",
            "Time to handle one consumed event.",
            ["service", "event_type"],
            registry=r,
        )
        # The labelled series a consumer touches for every record, looked up once each (a
        # `labels()` call takes a lock and builds a key); their labels are bounded already.
        self._consumed_series: dict[tuple[str, str, str], Any] = {}
        self._handle_series: dict[str, Any] = {}
        self.grpc_requests = Counter(
            "xiezuo_grpc_requests_total",
            "gRPC requests served, by status code.",
            ["service", "method", "code"],
            registry=r,
        )
        self.grpc_handling_seconds = Histogram(
            "xiezuo_grpc_server_handling_seconds",
            "Time from a gRPC call's arrival to its status, by method and code.",
            ["service", "method", "code"],
            buckets=GRPC_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "xiezuo_dead_letters_total",
            "Records parked on the dead-letter topic, by the topic they came from and why.",
            ["service", "topic", "reason"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "xiezuo_consumer_lag_records",
            "Records on a partition the consumer group has not committed yet.",
            ["service", "group", "topic", "partition"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "xiezuo_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest outbox row not yet published (0 when none waits).",
            ["service"],
            registry=r,
        )
        self.audit_unsealed_heads = Gauge(
            "xiezuo_audit_unsealed_chain_heads",
            "County audit chains whose newest entry fails its seal (edited, forged or deleted).",
            ["service"],
            registry=r,
        )
        self.sqlite_wal_frames = Gauge(
            "xiezuo_sqlite_wal_frames",
            "SQLite: frames (page images) of the write-ahead log not yet in the database file "
            "after the last checkpoint (0 when it has all been copied back).",
            ["service"],
            registry=r,
        )
        self.sqlite_wal_checkpoint_failures = Counter(
            "xiezuo_sqlite_wal_checkpoint_failures_total",
            "SQLite: checkpoints of the write-ahead log that failed (the log grows meanwhile).",
            ["service"],
            registry=r,
        )
        self.probe_failures = Counter(
            "xiezuo_metrics_probe_failures_total",
            "Rounds of a gauge refresh (lag, outbox age, deadlines) that failed; gauges are stale.",
            ["service", "probe"],
            registry=r,
        )

    def set_outbox_pending(self, count: int) -> None:
        """Record how many outbox rows wait to be published."""
        self.outbox_pending.labels(self.service).set(count)

    def outbox_event_published(self, event_type: str, zone: str) -> None:
        """Count one event published from the outbox."""
        self.outbox_published.labels(self.service, event_type, zone).inc()

    def observe_publish(self, seconds: float) -> None:
        """Record how long one outbox publish took."""
        self.outbox_publish_seconds.labels(self.service).observe(seconds)

    def event_consumed(self, event_type: str, zone: str, outcome: ConsumeOutcome) -> None:
        """Count one consumed event by outcome."""
        series = self._consumed_series.get((event_type, zone, outcome))
        if series is None:
            if outcome not in _OUTCOMES:
                # A free-form outcome would grow the series without bound and break dashboards.
                raise ValueError(f"unknown consume outcome {outcome!r}")
            series = self.events_consumed.labels(self.service, event_type, zone, outcome)
            self._consumed_series[(event_type, zone, outcome)] = series
        series.inc()

    def observe_handle(self, event_type: str, seconds: float) -> None:
        """Record how long handling one event took."""
        series = self._handle_series.get(event_type)
        if series is None:
            series = self._handle_series[event_type] = self.event_handle_seconds.labels(
                self.service, event_type
            )
        series.observe(seconds)

    def grpc_request(self, method: str, code: str, seconds: float) -> None:
        """Count one served gRPC request and record how long it took."""
        self.grpc_requests.labels(self.service, method, code).inc()
        self.grpc_handling_seconds.labels(self.service, method, code).observe(seconds)

    def dead_letter_written(self, topic: str, reason: str) -> None:
        """Count one record parked on the dead-letter topic."""
        self.dead_letters.labels(self.service, topic, reason).inc()

    def set_consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        """Record one partition's lag behind its consumer group's commit."""
        self.consumer_lag.labels(self.service, group, topic, str(partition)).set(lag)

    def set_outbox_oldest_age(self, seconds: float) -> None:
        """Record how long the oldest unpublished outbox row has waited."""
        self.outbox_oldest_age.labels(self.service).set(seconds)

    def start_series(
        self, *, topics: Iterable[str], reasons: Iterable[str], probes: Iterable[str]
    ) -> None:
        """Create at 0 the counters alerts take increase() of: a series born at 1 shows none."""
        reasons = list(reasons)
        for topic in topics:
            for reason in reasons:
                self.dead_letters.labels(self.service, topic, reason)
        for probe in probes:
            self.probe_failures.labels(self.service, probe)

    def set_audit_unsealed_heads(self, count: int) -> None:
        """Record how many county chain heads failed their seal at the last look."""
        self.audit_unsealed_heads.labels(self.service).set(count)

    def start_wal_series(self) -> None:
        """Create the WAL series at 0, for a service whose log is checkpointed beside it."""
        self.sqlite_wal_frames.labels(self.service).set(0)
        self.sqlite_wal_checkpoint_failures.labels(self.service)

    def wal_checkpointed(self, frames_left: int | None) -> None:
        """Record a WAL checkpoint's outcome: the frames it left in the log, or None: failed."""
        if frames_left is None:
            self.sqlite_wal_checkpoint_failures.labels(self.service).inc()
        else:
            self.sqlite_wal_frames.labels(self.service).set(frames_left)

    def probe_failed(self, probe: str) -> None:
        """Count one failed gauge refresh."""
        self.probe_failures.labels(self.service, probe).inc()


@dataclass
class MetricsServer:
    """A running /metrics HTTP server and its serving thread."""

    httpd: WSGIServer
    thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and wait for the thread."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout)


def start_metrics_server(
    registry: CollectorRegistry, host: str, port: int
) -> tuple[MetricsServer, int]:
    """Serve the registry on host:port (0 picks a free port) and return the bound port."""
    # prometheus_client 0.26 returns (WSGIServer, Thread); the server knows the real port.
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(httpd, thread), int(httpd.server_port)


def kafka_middlewares(
    registry: CollectorRegistry,
    tracer_provider: TracerProvider,
    *,
    service_name: str | None = None,
) -> list[KafkaTelemetryMiddleware | KafkaPrometheusMiddleware]:
    """Return FastStream's Kafka tracing and Prometheus middlewares for a broker."""
    # Order matters: FastStream enters broker middlewares first to last, so the telemetry
    # middleware opens the consume span (from the message's traceparent) around the metrics.
    return [
        KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
        KafkaPrometheusMiddleware(
            registry=registry,
            app_name=f"xiezuo-{service_name}" if service_name else "faststream",
        ),
    ]
