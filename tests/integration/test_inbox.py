"""Idempotent consumption and dead-lettering against real SQLite/PostgreSQL and real Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.tables import ClueRow
from services.contracts.intake import ClueRegistered
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer, Outcome, PoisonEvent, Record
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry
from services.runtime.outbox import EventProducer
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    clue_event_class,
    clue_registered,
    committed_offsets,
    count_rows,
    create_topics,
    envelope_of_event,
    header_map,
    produce,
    read_records,
    record_of,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka


def _cases_consumer(
    database: Database, producer: EventProducer, event_class: type[ClueRegistered], **kwargs: object
) -> EventConsumer:
    """The cases service's ClueRegistered consumer, with a group and DLQ private to the test."""
    consumer = EventConsumer(
        service=unique("cases"),
        database=database,
        dead_letter_producer=producer,
        retry_backoff_seconds=0.01,
        **kwargs,  # type: ignore[arg-type]
    )
    consumer.on(event_class, ClueRegisteredHandler([DEFAULT_RULES]))
    return consumer


async def _clues(database: Database, clue_id: str) -> int:
    return await count_rows(database, ClueRow, col(ClueRow.clue_id) == clue_id)


async def _inbox(database: Database, event_id: str) -> int:
    return await count_rows(database, InboxEntry, col(InboxEntry.event_id) == event_id)


def _kafka_record(envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return (f"{envelope.county_id}:{envelope.zone_id}".encode(), envelope.data, envelope.headers())


async def test_a_redelivered_record_has_no_second_effect(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = _cases_consumer(database, producer, ClueRegistered)
        event = clue_registered()
        envelope = envelope_of_event(event)
        record = record_of(envelope, topic=ClueRegistered.topic, offset=7)

        assert await consumer.consume(record) is Outcome.PROCESSED
        # The same record again (offset not committed), and the same event id re-published by
        # a relay that crashed before marking it (a later offset): both change nothing.
        assert await consumer.consume(record) is Outcome.DUPLICATE
        republished = record_of(envelope, topic=ClueRegistered.topic, offset=8)
        assert await consumer.consume(republished) is Outcome.DUPLICATE

        # Two deliveries racing (a rebalance hands the partition over mid-record).
        racing = clue_registered()
        racing_record = record_of(envelope_of_event(racing), topic=ClueRegistered.topic)
        outcomes = await asyncio.wait_for(
            asyncio.gather(consumer.consume(racing_record), consumer.consume(racing_record)), 60
        )
        assert sorted(outcomes) == sorted([Outcome.PROCESSED, Outcome.DUPLICATE])

    for clue in (event, racing):
        assert await _clues(database, clue.clue_id) == 1
        assert (
            await count_rows(database, AuditEntry, col(AuditEntry.record_id) == clue.clue_id) == 1
        )
    assert await _inbox(database, envelope.id) == 1
    assert await count_rows(database, InboxEntry) == 2


async def test_a_record_redelivered_by_kafka_is_applied_once(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    """Processed, then the process dies before the offset commit: Kafka redelivers it."""
    topic = unique("test.inbox.redelivery")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    processed_once = asyncio.Event()
    release = asyncio.Event()
    seen: list[tuple[int, Outcome]] = []

    class DiesBeforeAck(EventConsumer):
        async def consume(self, record: Record) -> Outcome:
            outcome = await super().consume(record)
            seen.append((record.offset, outcome))
            if len(seen) == 1:
                processed_once.set()
                await release.wait()
                raise RuntimeError("process died between the database commit and the ack")
            return outcome

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = DiesBeforeAck(
            service=unique("cases"),
            database=database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
        )
        consumer.on(event_class, ClueRegisteredHandler([DEFAULT_RULES]))
        group = consumer.consumer_name
        event = clue_registered(event_class)
        envelope = envelope_of_event(event)
        async with running_broker(kafka.bootstrap_servers, consumer):
            try:
                [offset] = await produce(kafka.bootstrap_servers, topic, [_kafka_record(envelope)])
                await asyncio.wait_for(processed_once.wait(), 60)
                # The effect is committed to the database, the offset is not (yet).
                assert await _clues(database, event.clue_id) == 1
                assert (topic, 0) not in await committed_offsets(kafka.bootstrap_servers, group)
            finally:
                release.set()

            async def committed_past(last: int) -> bool:
                offsets = await committed_offsets(kafka.bootstrap_servers, group)
                return offsets.get((topic, 0)) == last + 1

            await wait_until(lambda: committed_past(offset), "the redelivery to be committed")
            assert seen == [(offset, Outcome.PROCESSED), (offset, Outcome.DUPLICATE)]

            # The same event id published a second time (a relay resend) is skipped too.
            [again] = await produce(kafka.bootstrap_servers, topic, [_kafka_record(envelope)])
            await wait_until(lambda: committed_past(again), "the resend to be committed")
            assert seen[2:] == [(again, Outcome.DUPLICATE)]

    assert await _clues(database, event.clue_id) == 1
    assert await _inbox(database, envelope.id) == 1
    assert await count_rows(database, AuditEntry, col(AuditEntry.record_id) == event.clue_id) == 1


async def test_the_offset_is_committed_only_after_the_record_is_applied(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.inbox.commit")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    entered = asyncio.Event()
    release = asyncio.Event()
    handler = ClueRegisteredHandler([DEFAULT_RULES])

    async def slow_handler(session: AsyncSession, event: ClueRegistered, env: Envelope) -> None:
        await handler(session, event, env)
        if event.clue_id.startswith("slow"):
            entered.set()
            await release.wait()

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(event_class, slow_handler)
        group = consumer.consumer_name
        events = [clue_registered(event_class) for _ in range(2)]
        events.append(clue_registered(event_class, clue_id=unique("slow")))
        async with running_broker(kafka.bootstrap_servers, consumer):
            try:
                offsets = await produce(
                    kafka.bootstrap_servers,
                    topic,
                    [_kafka_record(envelope_of_event(event)) for event in events],
                )
                await asyncio.wait_for(entered.wait(), 60)
                # Records 0 and 1 are applied and committed; record 2 is mid-transaction.
                await wait_until(
                    lambda: _committed_is(kafka.bootstrap_servers, group, topic, offsets[1] + 1),
                    "the first two records to be committed",
                )
                await asyncio.sleep(1.0)
                assert await _committed(kafka.bootstrap_servers, group, topic) == offsets[1] + 1
                assert await _clues(database, events[2].clue_id) == 0
            finally:
                release.set()
            await wait_until(
                lambda: _committed_is(kafka.bootstrap_servers, group, topic, offsets[2] + 1),
                "the last record to be committed",
            )
            assert await _clues(database, events[2].clue_id) == 1


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    return (await committed_offsets(bootstrap, group)).get((topic, 0))


async def _committed_is(bootstrap: str, group: str, topic: str, expected: int) -> bool:
    return await _committed(bootstrap, group, topic) == expected


async def test_malformed_records_are_dead_lettered_and_the_partition_moves_on(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.inbox.poison")
    await create_topics(kafka.bootstrap_servers, topic, partitions=3)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = _cases_consumer(database, producer, event_class)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        valid = clue_registered(event_class)
        good = envelope_of_event(valid)
        key, _, headers = _kafka_record(good)
        without_id = [(name, value) for name, value in headers if name != "ce_id"]
        bad_json = envelope_of_event(clue_registered(event_class))
        records = [
            (key, b'{"county_id": "c-001", "zone_id": ', bad_json.headers()),  # truncated JSON
            (key, good.data, without_id),  # not a CloudEvent
            (key, good.data, good.headers()),
        ]
        async with running_broker(kafka.bootstrap_servers, consumer):
            offsets = await produce(kafka.bootstrap_servers, topic, records, partition=1)
            await wait_until(
                lambda: _committed_is_at(kafka.bootstrap_servers, consumer, topic, offsets[-1] + 1),
                "the partition to be consumed past the poison records",
            )
        assert await _clues(database, valid.clue_id) == 1
        assert await _inbox(database, good.id) == 1

        parked = await read_records(
            kafka.bootstrap_servers, consumer.dead_letter_topic, 2, settle=0.5
        )
        assert len(parked) == 2
        by_offset = {int(header_map(r)["x-original-offset"]): r for r in parked}
        assert sorted(by_offset) == offsets[:2]
        reasons = {offset: header_map(r)["x-dead-letter-reason"] for offset, r in by_offset.items()}
        assert reasons == {offsets[0]: b"invalid-payload", offsets[1]: b"invalid-envelope"}
        for offset, record in by_offset.items():
            dead = header_map(record)
            assert dead["x-original-topic"] == topic.encode()
            assert dead["x-original-partition"] == b"1"
            assert dead["x-dead-letter-consumer"] == consumer.consumer_name.encode()
            assert dead["x-dead-letter-group"] == consumer.group_id.encode()
            assert record.key == key  # parked as it arrived, with its original headers
            assert record.value == records[offsets.index(offset)][1]
        not_json, not_cloud_event = (
            header_map(by_offset[offsets[0]]),
            header_map(by_offset[offsets[1]]),
        )
        assert not_json["ce_id"] == bad_json.id.encode()
        assert b"Invalid JSON" in not_json["x-dead-letter-error"]
        assert not_cloud_event["x-dead-letter-error"] == b"missing CloudEvents headers: ce_id"


async def _committed_is_at(bootstrap: str, consumer: EventConsumer, topic: str, at: int) -> bool:
    offsets = await committed_offsets(bootstrap, consumer.consumer_name)
    return any(t == topic and offset == at for (t, _), offset in offsets.items())


async def test_a_failing_handler_is_retried_then_dead_lettered_without_blocking(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.inbox.failing")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])
    attempts: dict[str, int] = {}

    async def flaky(session: AsyncSession, event: ClueRegistered, envelope: Envelope) -> None:
        attempts[event.clue_id] = attempts.get(event.clue_id, 0) + 1
        # The effect is written before the failure: the rollback must undo it.
        await handler(session, event, envelope)
        await session.flush()
        if event.clue_id.startswith("broken"):
            raise ConnectionError("downstream unavailable")
        if event.clue_id.startswith("rejected"):
            raise PoisonEvent("subject cadre level is not handled by this zone")
        if event.clue_id.startswith("hiccup") and attempts[event.clue_id] == 1:
            raise ConnectionError("transient")

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"),
            database=database,
            dead_letter_producer=producer,
            max_attempts=3,
            retry_backoff_seconds=0.01,
        )
        consumer.on(event_class, flaky)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        events = {
            name: clue_registered(event_class, clue_id=unique(name))
            for name in ("broken", "rejected", "hiccup", "fine")
        }
        envelopes = {name: envelope_of_event(event) for name, event in events.items()}
        async with running_broker(kafka.bootstrap_servers, consumer):
            offsets = await produce(
                kafka.bootstrap_servers,
                topic,
                [_kafka_record(envelope) for envelope in envelopes.values()],
            )
            await wait_until(
                lambda: _committed_is(
                    kafka.bootstrap_servers, consumer.consumer_name, topic, offsets[-1] + 1
                ),
                "every record on the partition to be committed",
            )

        ids: Callable[[str], str] = lambda name: events[name].clue_id  # noqa: E731
        assert attempts == {ids("broken"): 3, ids("rejected"): 1, ids("hiccup"): 2, ids("fine"): 1}
        for name, expected in (("broken", 0), ("rejected", 0), ("hiccup", 1), ("fine", 1)):
            assert await _clues(database, ids(name)) == expected, name
            assert await _inbox(database, envelopes[name].id) == expected, name

        parked = await read_records(
            kafka.bootstrap_servers, consumer.dead_letter_topic, 2, settle=0.5
        )
        assert len(parked) == 2
        first, second = (header_map(record) for record in parked)
        assert first["ce_id"] == envelopes["broken"].id.encode()
        assert first["x-dead-letter-reason"] == b"handler-failed"
        assert first["x-dead-letter-attempts"] == b"3"
        assert first["x-dead-letter-error"] == b"ConnectionError: downstream unavailable"
        assert first["x-original-offset"] == str(offsets[0]).encode()
        assert second["ce_id"] == envelopes["rejected"].id.encode()
        assert second["x-dead-letter-reason"] == b"rejected"
        assert second["x-dead-letter-attempts"] == b"1"
        assert second["x-original-offset"] == str(offsets[1]).encode()
        assert second["x-original-topic"] == topic.encode()
