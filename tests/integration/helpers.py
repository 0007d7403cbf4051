"""Helpers for the messaging tests: events, private topics, plain Kafka readers, bounded waits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from sqlalchemy import func
from sqlmodel import select

from services.contracts.intake import ClueRegistered, ReportedSubject
from services.runtime.bus import bind_consumer, build_broker
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer, Record
from services.runtime.outbox import KafkaEventProducer

# Generous bounds: a loaded CI machine may take seconds to join a group or elect a leader.
WAIT_SECONDS = 45.0
SOURCE = "xiezuo-intake"
T = TypeVar("T")


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on the shared broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def clue_event_class(topic: str) -> type[ClueRegistered]:
    """ClueRegistered (same type name, same handler) published on a topic private to one test."""
    return type(
        f"ClueRegisteredOn_{topic.replace('-', '_').replace('.', '_')}",
        (ClueRegistered,),
        {"topic": topic, "__module__": __name__},
    )


def clue_registered(
    event_class: type[ClueRegistered] = ClueRegistered,
    *,
    county: str = "c-001",
    zone: str = "z-01",
    clue_id: str | None = None,
) -> ClueRegistered:
    """A valid ClueRegistered for `county`/`zone`."""
    now = datetime.now(UTC)
    return event_class(
        county_id=county,
        zone_id=zone,
        clue_id=clue_id or unique("clue"),
        report_id=unique("report"),
        township_id="t-01",
        channel="letter",
        allegation_categories=["misuse-of-funds"],
        subject=ReportedSubject(
            name="王某", post="村党支部书记", unit="某村", township_id="t-01", cadre_level="village"
        ),
        real_name=False,
        received_at=now,
        registered_at=now,
    )


def envelope_of_event(event: ClueRegistered, *, event_id: str | None = None) -> Envelope:
    """The CloudEvent the outbox would publish for `event`."""
    return Envelope(
        id=event_id or str(uuid.uuid4()),
        type=event.event_type,
        source=SOURCE,
        time=datetime.now(UTC),
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
        subject=event.subject_id(),
    )


def record_of(envelope: Envelope, *, topic: str, offset: int = 0, partition: int = 0) -> Record:
    """A Record as bind_consumer would build it from a delivered Kafka record."""
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=f"{envelope.county_id}:{envelope.zone_id}".encode(),
        value=envelope.data,
        headers=tuple(envelope.headers()),
    )


async def create_topics(bootstrap: str, *names: str, partitions: int = 1) -> None:
    """Create the topics and wait until the broker's metadata lists them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
            )
        deadline = time.monotonic() + WAIT_SECONDS
        while not set(names) <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise AssertionError(f"topics {names} never appeared")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
    *,
    partition: int | None = None,
) -> list[int]:
    """Publish raw (key, value, headers) records in order with a plain producer; their offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        offsets = []
        for key, value, headers in records:
            metadata = await producer.send_and_wait(
                topic, value, key=key, headers=headers, partition=partition
            )
            offsets.append(metadata.offset)
        return offsets
    finally:
        await producer.stop()


@asynccontextmanager
async def started_producer(bootstrap: str) -> AsyncIterator[KafkaEventProducer]:
    """The relay's producer, connected, stopped on exit."""
    producer = KafkaEventProducer(bootstrap, client_id=unique("test-producer"))
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def running_broker(bootstrap: str, consumer: EventConsumer) -> AsyncIterator[KafkaBroker]:
    """A FastStream broker feeding `consumer` through bind_consumer, stopped on exit."""
    broker = build_broker(bootstrap, client_id=unique("test-broker"))
    bind_consumer(broker, consumer)
    await asyncio.wait_for(broker.start(), WAIT_SECONDS)
    try:
        yield broker
    finally:
        await asyncio.wait_for(broker.stop(), WAIT_SECONDS)


async def read_records(
    bootstrap: str, topic: str, count: int, *, within: float = WAIT_SECONDS, settle: float = 0.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `count` records from the start of `topic` (no group, nothing committed).

    Waits up to `within` seconds. With `settle`, keeps polling that long after `count`
    arrived, so extra (duplicate) records show up too. Sorted by partition, then offset.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + within
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    assert len(records) >= count, f"{topic}: expected {count} records, got {len(records)}"
    return sorted(records, key=lambda record: (record.partition, record.offset))


async def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The offsets `group` has committed, by (topic, partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        (tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
    }


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, *, within: float = WAIT_SECONDS
) -> float:
    """Poll `check` until true; returns the seconds it took, fails after `within` seconds."""
    started = time.monotonic()

    async def done() -> bool | None:
        return True if await check() else None

    await eventually(done, what, within=within, every=0.05)
    return time.monotonic() - started


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    within: float = WAIT_SECONDS,
    every: float = 0.2,
) -> T:
    """Poll `probe` until it returns something (not None) and return it; fail after `within` s."""
    until = time.monotonic() + within
    while (found := await probe()) is None:
        if time.monotonic() > until:
            raise AssertionError(f"{what} not seen within {within:.0f} s")
        await asyncio.sleep(every)
    return found


def eventually_sync(
    probe: Callable[[], T | None], what: str, *, within: float = WAIT_SECONDS, every: float = 0.5
) -> T:
    """`eventually` for a synchronous test (one polling CLI subprocesses: no event loop runs)."""
    until = time.monotonic() + within
    while (found := probe()) is None:
        if time.monotonic() > until:
            raise AssertionError(f"{what} not seen within {within:.0f} s")
        time.sleep(every)
    return found


async def count_rows(database: Database, model: Any, *where: Any) -> int:
    """How many rows of `model` match `where`."""
    async with database.session() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)
        return int((await session.exec(query)).one())


def header_map(record: ConsumerRecord[bytes, bytes]) -> dict[str, bytes]:
    """A record's headers by name."""
    return dict(record.headers or ())


async def register_case_clue(
    db: Database,
    clue_id: str,
    *,
    at: datetime,
    zone: str = "z1",
    township: str = "t1",
    back_entered: bool = False,
    rule_versions: list[Any] | None = None,
) -> None:
    """Put a clue on cases' ledger as its ClueRegistered handler does (county c1)."""
    # Imported here: helpers serve every service's tests, cases' handler only these.
    from services.cases.domain.rules import DEFAULT_RULES
    from services.cases.handlers.clue_registered import ClueRegisteredHandler

    event = ClueRegistered(
        county_id="c1",
        zone_id=zone,
        clue_id=clue_id,
        report_id=f"r-{clue_id}",
        township_id=township,
        channel="letter",
        allegation_categories=["embezzlement"],
        subject=ReportedSubject(
            name="Li", post="secretary", unit="Hexi", township_id=township, cadre_level="village"
        ),
        real_name=False,
        received_at=at,
        registered_at=at,
        back_entered=back_entered,
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/intake",
        time=at,
        county_id="c1",
        zone_id=zone,
        data=b"{}",
    )
    async with db.transaction() as session:
        await ClueRegisteredHandler(rule_versions or [DEFAULT_RULES])(session, event, envelope)
