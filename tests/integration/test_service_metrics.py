"""The gauges an operator pages on, measured against the real broker and databases.

Consumer lag rises while a group is stopped and falls back to 0 once it consumes; the outbox's
oldest unpublished row has an age while the relay is stopped and none after it ran; deadlines
at risk are counted per zone from the deadline table; every dead letter is counted.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlmodel import col

from services.cases.deadline_gauges import DeadlineGauges
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.tables import DeadlineRow
from services.runtime import audit
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.inbox import EventConsumer
from services.runtime.lag import ConsumerLag
from services.runtime.localstack import KafkaNode
from services.runtime.migrate import upgrade_async
from services.runtime.outbox import OutboxRelay, oldest_unpublished_age, record_event
from services.runtime.telemetry import ServiceMetrics, start_metrics_server
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    clue_event_class,
    clue_registered,
    create_topics,
    envelope_of_event,
    produce,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """GET /metrics over HTTP and index every sample by name and sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def lag_key(group: str, topic: str, partition: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"service": "cases", "group": group, "topic": topic, "partition": str(partition)}
    return "xiezuo_consumer_lag_records", tuple(sorted(labels.items()))


@pytest.fixture
async def cases_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty cases database on SQLite (the consumer's effects go here)."""
    url = f"sqlite+aiosqlite:///{tmp_path / f'cases-{uuid.uuid4().hex[:6]}.sqlite3'}"
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.kafka
async def test_lag_rises_while_the_group_is_stopped_and_returns_to_zero(
    kafka: KafkaNode, cases_database: Database
) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = unique("test.lag")
    event_class = clue_event_class(topic)
    metrics = ServiceMetrics("cases")
    server, port = start_metrics_server(metrics.registry, "127.0.0.1", 0)
    async with started_producer(bootstrap) as producer:
        consumer = EventConsumer(
            service=unique("cases"),
            database=cases_database,
            dead_letter_producer=producer,
            metrics=metrics,
        )
        consumer.on(event_class, ClueRegisteredHandler([DEFAULT_RULES]))
        await create_topics(bootstrap, topic, consumer.dead_letter_topic, partitions=2)
        lag = ConsumerLag(
            bootstrap, group=consumer.consumer_name, topics=consumer.topics(), client_id="test-lag"
        )
        try:
            # Nobody of the group is running: five records on partition 0, two on 1.
            records = []
            for _ in range(5):
                envelope = envelope_of_event(clue_registered(event_class))
                records.append((b"z-01", envelope.data, envelope.headers()))
            await produce(bootstrap, topic, records, partition=0)
            await produce(bootstrap, topic, records[:2], partition=1)
            # One poison record (a type no contract declares) will be dead-lettered.
            odd = envelope_of_event(clue_registered(event_class))
            headers = [
                (name, b"xiezuo.nobody.invented.v9" if name == "ce_type" else raw)
                for name, raw in odd.headers()
            ]
            await produce(bootstrap, topic, [(b"z-01", odd.data, headers)], partition=1)

            async def refreshed() -> bool:
                # A fresh broker has no group coordinator for a moment: the probe's next
                # round (here: the next try) answers.
                try:
                    await lag.refresh(metrics.set_consumer_lag)
                except KafkaError:
                    return False
                return True

            await wait_until(refreshed, "a first lag measurement")
            before = scrape(port)
            assert before[lag_key(consumer.consumer_name, topic, 0)] == 5
            assert before[lag_key(consumer.consumer_name, topic, 1)] == 3

            async with running_broker(bootstrap, consumer):

                async def caught_up() -> bool:
                    return not any((await lag.measure()).values())

                await wait_until(caught_up, "the group to consume every record")
            await lag.refresh(metrics.set_consumer_lag)
            after = scrape(port)
        finally:
            await lag.close()
            server.stop()
    assert after[lag_key(consumer.consumer_name, topic, 0)] == 0
    assert after[lag_key(consumer.consumer_name, topic, 1)] == 0
    dead = ("reason", "unknown-type"), ("service", "cases"), ("topic", topic)
    assert after[("xiezuo_dead_letters_total", dead)] == 1


@pytest.mark.kafka
async def test_outbox_age_while_the_relay_is_stopped_and_none_after(
    kafka: KafkaNode, make_database: MakeDatabase
) -> None:
    database = await make_database("cases")
    metrics = ServiceMetrics("cases")
    assert await oldest_unpublished_age(database, now=datetime.now(UTC)) == 0
    topic = unique("test.outbox-age")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    async with database.transaction() as session:
        first = record_event(session, clue_registered(event_class), source="xiezuo/test")
        record_event(session, clue_registered(event_class), source="xiezuo/test")
    assert first.recorded_at is not None
    written = first.recorded_at

    # The relay is not running: the oldest row's age is measured from when it was written.
    later = written + timedelta(minutes=6)
    age = await oldest_unpublished_age(database, now=later)
    assert age == pytest.approx(360, abs=1)
    metrics.set_outbox_oldest_age(age)

    async with started_producer(kafka.bootstrap_servers) as producer:
        relay = OutboxRelay(database, producer, metrics=metrics)
        assert await relay.publish_pending() == 2
    age = await oldest_unpublished_age(database, now=later)
    metrics.set_outbox_oldest_age(age)
    assert age == 0
    server, port = start_metrics_server(metrics.registry, "127.0.0.1", 0)
    try:
        samples = scrape(port)
    finally:
        server.stop()
    assert samples[("xiezuo_outbox_oldest_unpublished_age_seconds", (("service", "cases"),))] == 0


def _deadline(
    zone: str, kind: str, *, due: datetime, warn: datetime, ended: bool = False
) -> DeadlineRow:
    return DeadlineRow(
        deadline_id=unique("dl"),
        case_id=unique("case"),
        county_id="c-001",
        zone_id=zone,
        kind=kind,
        rule_version="test",
        started_at=warn - timedelta(days=10),
        due_at=due,
        warn_at=warn,
        status="breached" if ended else "open",
        extensions=0,
        ended_at=due if ended else None,
    )


async def test_deadline_gauges_count_each_zone_on_its_own(make_database: MakeDatabase) -> None:
    database = await make_database("cases")
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    day = timedelta(days=1)
    zone1_late = _deadline("z-1", "disposition", due=now - day, warn=now - 4 * day)
    async with database.transaction() as session:
        session.add_all(
            [
                # z-1: one in its warning window, one past due, one not yet warned, one ended.
                _deadline("z-1", "disposition", due=now + day, warn=now - day),
                zone1_late,
                _deadline("z-1", "disposition", due=now + 9 * day, warn=now + 6 * day),
                _deadline("z-1", "disposition", due=now - 9 * day, warn=now - 12 * day, ended=True),
                # z-2: two past due of different kinds.
                _deadline("z-2", "disposition", due=now - day, warn=now - 3 * day),
                _deadline("z-2", "rectification", due=now - 2 * day, warn=now - 5 * day),
            ]
        )
    metrics = ServiceMetrics("cases")
    gauges = DeadlineGauges(database, metrics.registry)
    await gauges.refresh(now)
    server, port = start_metrics_server(metrics.registry, "127.0.0.1", 0)
    try:
        first = scrape(port)
        # The late deadline in z-1 is met (late): z-1's breach count goes back to 0.
        async with database.transaction() as session:
            row = await session.get(DeadlineRow, zone1_late.deadline_id)
            assert row is not None
            row.ended_at = now
            session.add(row)
        await gauges.refresh(now)
        second = scrape(port)
    finally:
        server.stop()

    def at(
        name: str, zone: str, kind: str = "disposition"
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        labels = {"service": "cases", "county": "c-001", "zone": zone, "kind": kind}
        return f"xiezuo_deadlines_{name}", tuple(sorted(labels.items()))

    assert first[at("approaching", "z-1")] == 1
    assert first[at("breached", "z-1")] == 1
    assert first[at("approaching", "z-2")] == 0
    assert first[at("breached", "z-2")] == 1
    assert first[at("breached", "z-2", "rectification")] == 1
    assert second[at("breached", "z-1")] == 0
    assert second[at("approaching", "z-1")] == 1
    assert second[at("breached", "z-2")] == 1


async def test_an_edited_newest_audit_entry_shows_as_an_unsealed_head(
    make_database: MakeDatabase,
) -> None:
    database = await make_database("cases")
    for county in ("c-001", "c-002"):
        async with database.transaction() as session:
            await audit.append(
                session,
                county_id=county,
                actor="u-1",
                action="clue.read",
                record_type="clue",
                record_id="clue-1",
                detail={"reason": "review"},
            )
    metrics = ServiceMetrics("cases")

    async def look() -> float:
        async with database.session() as session:
            metrics.set_audit_unsealed_heads(
                await audit.unsealed_heads(session, audit.audit_key_of(session))
            )
        return gauge_value(metrics, "xiezuo_audit_unsealed_chain_heads")

    assert await look() == 0
    # Someone with write access to the database (but not the key) edits the newest entry.
    async with database.transaction() as session:
        await session.exec(
            update(audit.AuditEntry)
            .where(col(audit.AuditEntry.county_id) == "c-002")
            .values(actor="someone-else")
        )
    assert await look() == 1


def gauge_value(metrics: ServiceMetrics, name: str) -> float:
    """The value of a single-series gauge in the service's registry."""
    value = metrics.registry.get_sample_value(name, {"service": metrics.service})
    assert value is not None, name
    return value
