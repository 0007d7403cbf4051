"""SQL statement spans: none unless XIEZUO_SQL_SPANS asks for them, then one per statement."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from services.runtime.host import ServiceHost
from services.runtime.settings import PlatformSettings, Settings

# Selected by a test, so a statement of another test or of the engine's set-up cannot match.
MARKER = 41_977


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    # The instrumentor is one per process: leave no engine or create_engine wrapped behind.
    if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
        SQLAlchemyInstrumentor().uninstrument()
    provider.shutdown()


async def _select_marker(tmp_path: Path, provider: TracerProvider) -> bool:
    """A service's host set up as `run` sets it up, then one statement inside a span of the
    caller's, as a gRPC call or an event would run it; whether the host traces statements."""
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    try:
        traced = host.trace_statements(provider)
        with provider.get_tracer("test").start_as_current_span("call"):
            async with host.database.session() as session:
                connection = await session.connection()
                value = (await connection.execute(text(f"SELECT {MARKER}"))).scalar_one()
    finally:
        await host.database.dispose()
    assert value == MARKER
    return traced


def _statement_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        span
        for span in spans.get_finished_spans()
        if str(MARKER) in str((span.attributes or {}).get("db.statement", ""))
    ]


@pytest.mark.parametrize("setting", [None, "false"])
async def test_statements_get_no_span_by_default_or_when_turned_off(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exporter: tuple[TracerProvider, InMemorySpanExporter],
    setting: str | None,
) -> None:
    if setting is not None:
        monkeypatch.setenv("XIEZUO_SQL_SPANS", setting)
    provider, spans = exporter
    assert await _select_marker(tmp_path, provider) is False
    names = [span.name for span in spans.get_finished_spans()]
    assert names == ["call"], names


async def test_turned_on_each_statement_is_a_span_inside_the_callers_trace(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exporter: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    monkeypatch.setenv("XIEZUO_SQL_SPANS", "true")
    provider, spans = exporter
    assert await _select_marker(tmp_path, provider) is True
    (statement,) = _statement_spans(spans)
    (call,) = [span for span in spans.get_finished_spans() if span.name == "call"]
    assert statement.parent is not None and call.context is not None
    assert statement.parent.span_id == call.context.span_id
    assert statement.context is not None and statement.context.trace_id == call.context.trace_id
