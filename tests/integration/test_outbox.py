"""Transactional outbox against real SQLite/PostgreSQL and a real Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlmodel import col, select

from services.cases.domain.clue import NewClue
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.store.clues import register_clue
from services.cases.store.tables import ClueRow
from services.contracts.intake import ClueRegistered
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.outbox import KafkaEventProducer, OutboxRelay, record_event
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    WAIT_SECONDS,
    clue_event_class,
    clue_registered,
    count_rows,
    create_topics,
    header_map,
    read_records,
    started_producer,
    unique,
    wait_until,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _new_clue(event: ClueRegistered) -> NewClue:
    return NewClue(
        clue_id=event.clue_id,
        county_id=event.county_id,
        zone_id=event.zone_id,
        township_id=event.township_id,
        source_report_id=event.report_id,
        channel=event.channel,
        allegation_categories=tuple(event.allegation_categories),
        subject_cadre_level=event.subject.cadre_level,
        real_name=event.real_name,
        registered_at=event.registered_at,
    )


async def _register(database: Database, event: ClueRegistered) -> str:
    """The state change and the event it implies, in one transaction; returns the outbox id."""
    async with database.transaction() as session:
        await register_clue(session, _new_clue(event), DEFAULT_RULES, actor="test")
        row = record_event(session, event, source="xiezuo-cases")
    return row.event_id


async def _outbox_rows(database: Database) -> list[OutboxMessage]:
    async with database.session() as session:
        query = select(OutboxMessage).order_by(col(OutboxMessage.id))
        return list((await session.exec(query)).all())


async def test_state_change_and_event_commit_or_roll_back_together(
    make_database: MakeDatabase,
) -> None:
    database = await make_database("cases")
    commits: list[str] = []
    database.on_outbox_commit(lambda: commits.append("outbox"))

    kept = clue_registered()
    event_id = await _register(database, kept)
    assert commits == ["outbox"]
    assert await count_rows(database, ClueRow, col(ClueRow.clue_id) == kept.clue_id) == 1
    [row] = await _outbox_rows(database)
    assert (row.event_id, row.event_type, row.topic) == (
        event_id,
        ClueRegistered.event_type,
        ClueRegistered.topic,
    )
    assert row.partition_key == "c-001:z-01"
    assert row.subject == kept.clue_id
    assert row.published_at is None and row.publish_attempts == 0
    assert ClueRegistered.model_validate_json(row.payload) == kept

    lost = clue_registered()
    with pytest.raises(RuntimeError, match="request failed"):
        async with database.transaction() as session:
            await register_clue(session, _new_clue(lost), DEFAULT_RULES, actor="test")
            record_event(session, lost, source="xiezuo-cases")
            await session.flush()  # both rows reached the database before the failure
            raise RuntimeError("request failed after writing")
    # Neither the clue, its audit entry nor its event survived; the relay was not woken.
    assert await count_rows(database, ClueRow, col(ClueRow.clue_id) == lost.clue_id) == 0
    assert await count_rows(database, AuditEntry, col(AuditEntry.record_id) == lost.clue_id) == 0
    assert [r.event_id for r in await _outbox_rows(database)] == [event_id]
    assert commits == ["outbox"]


@pytest.mark.kafka
async def test_rows_committed_before_a_crash_are_published_by_a_fresh_relay(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.outbox.crash")
    await create_topics(kafka.bootstrap_servers, topic, partitions=3)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    events = [
        clue_registered(event_class, zone="z-01"),
        clue_registered(event_class, zone="z-02"),
        clue_registered(event_class, zone="z-01"),
    ]
    event_ids = [await _register(database, event) for event in events]
    # The process "dies" here: committed, never published, every connection gone.
    await database.dispose()

    restarted = Database(database.url, audit_key=database.audit_key)
    try:
        async with started_producer(kafka.bootstrap_servers) as producer:
            # A long idle poll: only the relay's first pass can publish within the test.
            relay = OutboxRelay(restarted, producer, idle_poll_seconds=300)
            task = asyncio.create_task(relay.run())
            try:
                records = await read_records(kafka.bootstrap_servers, topic, 3, settle=0.5)
            finally:
                await relay.stop()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        assert len(records) == 3  # published once each
        by_id = {header_map(record)["ce_id"].decode(): record for record in records}
        assert sorted(by_id) == sorted(event_ids)
        for event_id, event in zip(event_ids, events, strict=True):
            record = by_id[event_id]
            headers = header_map(record)
            assert record.key == f"c-001:{event.zone_id}".encode()
            assert headers["ce_specversion"] == b"1.0"
            assert headers["ce_type"] == b"xiezuo.intake.clue_registered.v1"
            assert headers["ce_source"] == b"xiezuo-cases"
            assert headers["content-type"] == b"application/json"
            assert headers["ce_subject"] == event.clue_id.encode()
            assert (headers["ce_countyid"], headers["ce_zoneid"]) == (
                b"c-001",
                event.zone_id.encode(),
            )
            assert RFC3339_UTC.match(headers["ce_time"].decode()), headers["ce_time"]
            assert json.loads(record.value) == json.loads(event.model_dump_json())
        rows = await _outbox_rows(restarted)
        assert all(row.published_at is not None for row in rows)
        assert [row.publish_attempts for row in rows] == [1, 1, 1]
    finally:
        await restarted.dispose()


@pytest.mark.kafka
async def test_relay_publishes_in_id_order_and_keeps_each_key_in_order(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    single = unique("test.outbox.order1")
    spread = unique("test.outbox.order3")
    await create_topics(kafka.bootstrap_servers, single, partitions=1)
    await create_topics(kafka.bootstrap_servers, spread, partitions=3)
    database = await make_database("cases")
    zones = ["z-01", "z-02", "z-03", "z-04"]
    # Interleaved keys over many transactions, on a one-partition and a three-partition topic.
    written: list[tuple[str, str, str]] = []  # (topic, zone, event id) in outbox id order
    for _ in range(3):
        for zone in zones:
            for topic in (single, spread):
                event = clue_registered(clue_event_class(topic), zone=zone)
                written.append((topic, zone, await _register(database, event)))

    async with started_producer(kafka.bootstrap_servers) as producer:
        relay = OutboxRelay(database, producer, batch_size=5)
        passes = []
        while published := await asyncio.wait_for(relay.publish_pending(), WAIT_SECONDS):
            passes.append(published)
    assert passes == [5, 5, 5, 5, 4]

    # One partition: the topic's order is the relay's send order, which must be id order.
    single_records = await read_records(kafka.bootstrap_servers, single, 12, settle=0.5)
    assert [header_map(r)["ce_id"].decode() for r in single_records] == [
        event_id for topic, _, event_id in written if topic == single
    ]
    # Three partitions: every key lands on one partition, in the order it was written.
    spread_records = await read_records(kafka.bootstrap_servers, spread, 12, settle=0.5)
    assert len(spread_records) == 12
    for zone in zones:
        key = f"c-001:{zone}".encode()
        mine = [r for r in spread_records if r.key == key]
        assert len({r.partition for r in mine}) == 1
        assert [header_map(r)["ce_id"].decode() for r in mine] == [
            event_id for topic, z, event_id in written if topic == spread and z == zone
        ]
    rows = await _outbox_rows(database)
    assert all(row.published_at is not None for row in rows)
    # Marked in the pass that sent them: batch boundaries follow id order.
    published_at = [row.published_at for row in rows]
    assert published_at == sorted(published_at)  # type: ignore[type-var]


@pytest.mark.kafka
async def test_a_commit_wakes_the_running_relay(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.outbox.wake")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")

    async def published(event_id: str) -> bool:
        clause = col(OutboxMessage.event_id) == event_id
        return (
            await count_rows(
                database, OutboxMessage, clause, col(OutboxMessage.published_at).isnot(None)
            )
            == 1
        )

    async with started_producer(kafka.bootstrap_servers) as producer:
        idle_poll = 30.0
        relay = OutboxRelay(database, producer, idle_poll_seconds=idle_poll)
        task = asyncio.create_task(relay.run())
        try:
            # Once this is out, the relay has nothing left and sleeps for up to `idle_poll`.
            first = await _register(database, clue_registered(event_class))
            await wait_until(lambda: published(first), "the first event to be published")
            await asyncio.sleep(0.5)  # let the relay settle into its idle wait
            assert not task.done()

            started = time.monotonic()
            second = await _register(database, clue_registered(event_class))
            records = await read_records(kafka.bootstrap_servers, topic, 2, within=idle_poll)
            took = time.monotonic() - started
            assert [header_map(r)["ce_id"].decode() for r in records] == [first, second]
            # Far sooner than the idle poll: the commit itself woke the relay.
            assert took < 10.0, f"took {took:.1f}s; the relay was not woken by the commit"
            await wait_until(lambda: published(second), "the second event to be marked")
        finally:
            await relay.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _GatedProducer:
    """The real relay producer, holding every send until the test opens the gate."""

    def __init__(self, producer: KafkaEventProducer) -> None:
        self._producer = producer
        self.gate = asyncio.Event()
        self.waiting = 0

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        self.waiting += 1
        await self.gate.wait()
        return await self._producer.send(topic, value, key, headers)


@pytest.mark.kafka
async def test_stopping_during_a_pass_publishes_each_row_once(
    make_database: MakeDatabase, kafka: KafkaNode, request: pytest.FixtureRequest
) -> None:
    topic = unique("test.outbox.stop")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    event_ids = [await _register(database, clue_registered(event_class)) for _ in range(3)]

    async with started_producer(kafka.bootstrap_servers) as producer:
        gated = _GatedProducer(producer)
        relay = OutboxRelay(database, gated, idle_poll_seconds=30)
        task = asyncio.create_task(relay.run())
        stopping: asyncio.Task[None] | None = None
        try:
            await wait_until(_async(lambda: gated.waiting >= 1), "the relay's pass to start")
            # Shutdown arrives while that pass is sending (host.py: broker.stop, relay.stop).
            stopping = asyncio.create_task(relay.stop())
            with contextlib.suppress(AssertionError):
                # SQLite: stop()'s own pass gets here too; PostgreSQL: it waits on FOR UPDATE.
                await wait_until(_async(lambda: gated.waiting >= 2), "a second pass", within=2)
            gated.gate.set()
            await asyncio.wait_for(stopping, WAIT_SECONDS)
            await asyncio.wait_for(task, WAIT_SECONDS)  # run() ends by itself once stopped
        finally:
            gated.gate.set()
            for pending in (stopping, task):
                if pending is not None and not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending

    records = await read_records(kafka.bootstrap_servers, topic, 3, settle=1.0)
    published = [header_map(record)["ce_id"].decode() for record in records]
    attempts = [row.publish_attempts for row in await _outbox_rows(database)]
    assert published == event_ids
    assert attempts == [1, 1, 1]


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped
