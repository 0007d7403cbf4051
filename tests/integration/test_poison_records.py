"""Every record a consumer cannot read is dead-lettered with its reason, and its offset committed.

Each poison record is the last on its partition, so the group's lag must return to 0 (the
offset commit is not left to a later, valid record). Run one record at a time and in batches.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import generate_latest

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.runtime.audit_key import AuditKey
from services.runtime.bus import bind_consumer, build_broker
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.migrate import upgrade_async
from services.runtime.telemetry import ServiceMetrics, kafka_middlewares
from tests.integration.helpers import (
    WAIT_SECONDS,
    clue_event_class,
    clue_registered,
    committed_offsets,
    create_topics,
    envelope_of_event,
    header_map,
    produce,
    read_records,
    started_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka

Headers = list[tuple[str, bytes]]


def _replace(headers: Headers, name: str, value: bytes | None) -> Headers:
    """The headers with `name` set to `value` (or removed when None)."""
    kept = [(key, raw) for key, raw in headers if key != name]
    return kept if value is None else [*kept, (name, value)]


def _poison(kind: str, envelope: Envelope) -> tuple[bytes | None, Headers]:
    """(value, headers) of a record of the given poison kind, built from a valid envelope."""
    headers = envelope.headers()
    if kind == "type-not-utf8":
        return envelope.data, _replace(headers, "ce_type", b"\xff\xfe")
    if kind == "id-not-utf8":
        return envelope.data, _replace(headers, "ce_id", b"\x80abc")
    if kind == "missing-headers":
        return envelope.data, _replace(_replace(headers, "ce_source", None), "ce_time", None)
    if kind == "bad-time":
        return envelope.data, _replace(headers, "ce_time", b"yesterday")
    if kind == "no-value":
        return None, headers
    if kind == "body-not-json":
        return b"\xff\x00{not json", headers
    if kind == "body-not-schema":
        return b'{"county_id": "c-001", "zone_id": "z-01", "clue_id": 7}', headers
    if kind == "unknown-type":
        return envelope.data, _replace(headers, "ce_type", b"xiezuo.nobody.invented.v9")
    if kind == "wrong-county":
        return envelope.data, _replace(headers, "ce_countyid", b"c-999")
    raise AssertionError(kind)


REASONS = {
    "type-not-utf8": (b"invalid-envelope", b"header ce_type is not UTF-8"),
    "id-not-utf8": (b"invalid-envelope", b"header ce_id is not UTF-8"),
    "missing-headers": (b"invalid-envelope", b"missing CloudEvents headers: ce_source, ce_time"),
    "bad-time": (b"invalid-envelope", b"ce_time 'yesterday' is not RFC 3339"),
    "no-value": (b"invalid-envelope", b"record has no value"),
    "body-not-json": (b"invalid-payload", b"Invalid JSON"),
    "body-not-schema": (b"invalid-payload", b"validation error"),
    "unknown-type": (b"unknown-type", b"no contract declares event type"),
    "wrong-county": (b"tenancy-mismatch", b"ce_countyid/ce_zoneid differ from the payload"),
}


@asynccontextmanager
async def _service_broker(
    bootstrap: str, consumer: EventConsumer, metrics: ServiceMetrics
) -> AsyncIterator[None]:
    """A broker wired as a service's host wires it: tracing and Prometheus middlewares too."""
    broker = build_broker(
        bootstrap,
        client_id=unique("test-broker"),
        middlewares=kafka_middlewares(metrics.registry, TracerProvider(), service_name="cases"),
    )
    bind_consumer(broker, consumer)
    await asyncio.wait_for(broker.start(), WAIT_SECONDS)
    try:
        yield
    finally:
        await asyncio.wait_for(broker.stop(), WAIT_SECONDS)


async def _wait_for_lag_zero(
    bootstrap: str, consumer: EventConsumer, topic: str, last_offset: int, what: str
) -> None:
    """Until the consumer's group has committed past `last_offset` on partition 0."""

    async def lag_is_zero() -> bool:
        done = await committed_offsets(bootstrap, consumer.consumer_name)
        return done.get((topic, 0)) == last_offset + 1

    await wait_until(lag_is_zero, what)


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty cases database on SQLite."""
    url = f"sqlite+aiosqlite:///{tmp_path / f'cases-{uuid.uuid4().hex[:6]}.sqlite3'}"
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.parametrize("batch_size", [1, 50], ids=["one-by-one", "batched"])
@pytest.mark.parametrize("kind", sorted(REASONS))
async def test_a_poison_record_last_on_its_partition_is_parked_and_committed(
    kind: str, batch_size: int, kafka: KafkaNode, sqlite_database: Database
) -> None:
    topic = unique(f"test.poison.{kind}")
    event_class = clue_event_class(topic)
    metrics = ServiceMetrics("cases")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"),
            database=sqlite_database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
            metrics=metrics,
            batch_size=batch_size,
        )
        consumer.on(event_class, ClueRegisteredHandler([DEFAULT_RULES]))
        await create_topics(kafka.bootstrap_servers, topic, consumer.dead_letter_topic)
        good = envelope_of_event(clue_registered(event_class))
        value, headers = _poison(kind, envelope_of_event(clue_registered(event_class)))
        key = b"c-001:z-01"
        async with _service_broker(kafka.bootstrap_servers, consumer, metrics):
            offsets = await produce(
                kafka.bootstrap_servers,
                topic,
                [(key, good.data, good.headers()), (key, value, headers)],
            )

            await _wait_for_lag_zero(
                kafka.bootstrap_servers,
                consumer,
                topic,
                offsets[-1],
                "the poison record's offset to be committed",
            )

    [parked] = await read_records(
        kafka.bootstrap_servers, consumer.dead_letter_topic, 1, settle=0.5
    )
    dead = header_map(parked)
    reason, error = REASONS[kind]
    assert dead["x-dead-letter-reason"] == reason
    assert error in dead["x-dead-letter-error"], dead["x-dead-letter-error"]
    assert dead["x-original-offset"] == str(offsets[-1]).encode()
    # Parked exactly as it arrived: value and original headers, byte for byte.
    assert parked.value == (value or b"")
    assert [(name, raw) for name, raw in parked.headers if not name.startswith("x-")] == headers

    exposition = generate_latest(metrics.registry).decode()
    dead_lines = [
        line
        for line in exposition.splitlines()
        if line.startswith("xiezuo_events_consumed_total{") and 'outcome="dead_lettered"' in line
    ]
    assert len(dead_lines) == 1, dead_lines
    if kind in ("type-not-utf8", "id-not-utf8", "missing-headers", "bad-time", "no-value"):
        assert 'event_type="unknown"' in dead_lines[0]
    if kind == "unknown-type":
        # Anyone who can write to a topic must not be able to grow the label set.
        assert 'event_type="unknown"' in dead_lines[0]
        assert "nobody.invented" not in exposition


async def test_a_newer_version_of_a_known_type_is_skipped_not_parked(
    kafka: KafkaNode, sqlite_database: Database
) -> None:
    """A `.v2` published beside `.v1` (the versioning rule) is skipped by a `.v1` consumer."""
    topic = unique("test.newer-version")
    event_class = clue_event_class(topic)
    metrics = ServiceMetrics("cases")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"),
            database=sqlite_database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
            metrics=metrics,
            known_types=frozenset({event_class.event_type}),
        )
        consumer.on(event_class, ClueRegisteredHandler([DEFAULT_RULES]))
        await create_topics(kafka.bootstrap_servers, topic, consumer.dead_letter_topic)
        current = envelope_of_event(clue_registered(event_class))
        newer_type = event_class.event_type.removesuffix(".v1") + ".v2"
        newer = _replace(current.headers(), "ce_type", newer_type.encode())
        async with _service_broker(kafka.bootstrap_servers, consumer, metrics):
            offsets = await produce(
                kafka.bootstrap_servers,
                topic,
                [
                    (b"c-001:z-01", current.data, current.headers()),
                    (b"c-001:z-01", current.data, newer),
                ],
            )

            await _wait_for_lag_zero(
                kafka.bootstrap_servers,
                consumer,
                topic,
                offsets[-1],
                "the newer record's offset to be committed",
            )

    parked = await read_records(kafka.bootstrap_servers, consumer.dead_letter_topic, 0, settle=1.0)
    assert parked == []
    exposition = generate_latest(metrics.registry).decode()
    skipped = [
        line
        for line in exposition.splitlines()
        if line.startswith("xiezuo_events_consumed_total{") and 'outcome="ignored"' in line
    ]
    assert len(skipped) == 1 and 'event_type="unknown"' in skipped[0], skipped
    assert newer_type not in exposition
