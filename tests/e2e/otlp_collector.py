"""An in-process OTLP/gRPC trace collector the service processes export their spans to."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2


@dataclass(frozen=True)
class CollectedSpan:
    """One received span, flattened: ids as lowercase hex, kind as its OTLP name."""

    service: str
    scope: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]

    @property
    def db_statement(self) -> str:
        """The SQL of a database span ('' for other spans), across semconv versions."""
        for key in ("db.statement", "db.query.text"):
            value = self.attributes.get(key)
            if isinstance(value, str):
                return value
        return ""

    @property
    def is_db(self) -> bool:
        """Whether the span is a database call."""
        return (
            "db.system" in self.attributes
            or "db.system.name" in self.attributes
            or "INSERT" in self.name
        )


def _value(value: common_pb2.AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(inner) for inner in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def _attributes(pairs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class OtlpCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """Receives ExportTraceServiceRequests on 127.0.0.1:<free port> and keeps every span."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[CollectedSpan] = []
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        """What XIEZUO_OTLP_ENDPOINT should say (http:// means an insecure channel)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind a free port and serve."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        if self.port == 0:
            raise RuntimeError("the OTLP collector could not bind a port")
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving (spans received so far stay readable)."""
        if self._server is not None:
            self._server.stop(None)
            self._server = None

    def Export(  # the gRPC method name, so not snake_case
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        """Keep the request's spans."""
        received: list[CollectedSpan] = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            service = str(resource.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        CollectedSpan(
                            service=service,
                            scope=scope_spans.scope.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=trace_pb2.Span.SpanKind.Name(span.kind),
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes=_attributes(span.attributes),
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[CollectedSpan]:
        """A snapshot of every span received so far."""
        with self._lock:
            return list(self._spans)

    def trace(self, trace_id: str) -> list[CollectedSpan]:
        """The spans received so far of one trace, in start order."""
        return sorted(
            (span for span in self.spans() if span.trace_id == trace_id),
            key=lambda span: span.start_ns,
        )


def render_tree(spans: Iterable[CollectedSpan]) -> str:
    """One line per span, indented under its parent; orphans (parent not received) at the top."""
    spans = sorted(spans, key=lambda span: span.start_ns)
    ids = {span.span_id for span in spans}
    children: dict[str, list[CollectedSpan]] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)
    lines: list[str] = []

    def walk(span: CollectedSpan, depth: int) -> None:
        kind = span.kind.removeprefix("SPAN_KIND_")
        sql = " ".join(span.db_statement.split())
        detail = f"  «{sql[:70]}»" if sql else ""
        parent = "" if depth else f" (parent {span.parent_span_id or '-'})"
        lines.append(
            f"{'  ' * depth}- {span.name} [{kind}] {span.service} "
            f"span={span.span_id}{parent}{detail}"
        )
        for child in children.get(span.span_id, []):
            walk(child, depth + 1)

    for span in spans:
        if span.parent_span_id not in ids:
            walk(span, 0)
    return "\n".join(lines) or "(no spans)"
