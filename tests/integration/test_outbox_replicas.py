"""Two relays on one PostgreSQL outbox, as two replicas of a service run them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from sqlmodel import col, select

from services.contracts.intake import ClueRegistered
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.localstack import KafkaNode, PostgresCluster
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.migrate import upgrade_async
from services.runtime.outbox import KafkaEventProducer, OutboxRelay, record_event
from tests.integration.helpers import (
    WAIT_SECONDS,
    clue_event_class,
    clue_registered,
    create_topics,
    header_map,
    read_records,
    started_producer,
    unique,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ZONES = ("z-01", "z-02", "z-03")


async def _outbox(postgres: PostgresCluster, rows: list[ClueRegistered]) -> Database:
    url = await postgres.acreate_database(f"relays_{uuid.uuid4().hex[:10]}")
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    for event in rows:
        async with database.transaction() as session:
            record_event(session, event, source="xiezuo-cases")
    return database


async def _published_ids(database: Database) -> list[str]:
    async with database.session() as session:
        query = select(OutboxMessage.event_id).order_by(col(OutboxMessage.id))
        return list((await session.exec(query)).all())


class _FrozenProducer:
    """The real producer behind a gate that never opens: a replica frozen mid-pass."""

    def __init__(self, producer: KafkaEventProducer) -> None:
        self._producer = producer
        self.entered = asyncio.Event()
        self._never = asyncio.Event()

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        self.entered.set()
        await self._never.wait()
        return await self._producer.send(topic, value, key, headers)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def test_two_relays_publish_each_row_once_and_each_key_in_order(
    postgres: PostgresCluster, kafka: KafkaNode
) -> None:
    topic = unique("test.relays.order")
    await create_topics(kafka.bootstrap_servers, topic, partitions=1)
    event_class = clue_event_class(topic)
    events = [clue_registered(event_class, zone=ZONES[index % 3]) for index in range(60)]
    database = await _outbox(postgres, events)
    # A second engine: the other replica's own connections.
    other = Database(database.url, audit_key=database.audit_key)
    try:
        async with started_producer(kafka.bootstrap_servers) as producer:
            relays = [
                OutboxRelay(database, producer, batch_size=7),
                OutboxRelay(other, producer, batch_size=7),
            ]

            async def drain(relay: OutboxRelay) -> int:
                total = 0
                while published := await relay.publish_pending():
                    total += published
                return total

            totals = await asyncio.wait_for(
                asyncio.gather(*(drain(relay) for relay in relays)), WAIT_SECONDS
            )
        records = await read_records(kafka.bootstrap_servers, topic, 60, settle=1.0)
    finally:
        await other.dispose()
        await database.dispose()
    assert sum(totals) == 60
    # One partition: the wire order is the order of sending; nothing twice, ids in order.
    on_wire = [header_map(record)["ce_id"].decode() for record in records]
    assert on_wire == await _published_ids(database)


async def test_a_frozen_replicas_claim_expires_and_the_other_relay_publishes(
    postgres: PostgresCluster, kafka: KafkaNode
) -> None:
    topic = unique("test.relays.frozen")
    await create_topics(kafka.bootstrap_servers, topic, partitions=1)
    event_class = clue_event_class(topic)
    events = [clue_registered(event_class, zone=zone) for zone in ZONES * 2]
    database = await _outbox(postgres, events)
    other = Database(database.url, audit_key=database.audit_key)
    try:
        async with started_producer(kafka.bootstrap_servers) as producer:
            frozen = _FrozenProducer(producer)
            # Its session stays open and its row locks held: nothing tells PostgreSQL that
            # the replica is gone (a SIGKILL would close the socket; a frozen node does not).
            stuck = OutboxRelay(database, frozen, claim_timeout_seconds=1.0)
            stuck_pass = asyncio.create_task(stuck.publish_pending())
            try:
                await asyncio.wait_for(frozen.entered.wait(), WAIT_SECONDS)
                survivor = OutboxRelay(other, producer, claim_timeout_seconds=1.0)
                published = await asyncio.wait_for(survivor.publish_pending(), WAIT_SECONDS)
            finally:
                await _cancel(stuck_pass)
        records = await read_records(kafka.bootstrap_servers, topic, len(events), settle=0.5)
        expected = await _published_ids(other)
    finally:
        await other.dispose()
        await database.dispose()
    assert published == len(events)
    assert [header_map(record)["ce_id"].decode() for record in records] == expected
