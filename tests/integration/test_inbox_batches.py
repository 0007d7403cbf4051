"""Batched consumption: one transaction and one offset commit per batch, every guarantee kept.

Against real SQLite/PostgreSQL and a real broker: nothing lost, nothing applied twice (also
when the process dies between the commit and the ack), a failing record retried alone and
dead-lettered without holding the others, and each key's order kept around it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
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


class ProcessDied(BaseException):
    """Not an Exception: nothing in the consumer may catch it, as with a killed process."""


def _kafka_record(envelope: Envelope, zone: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return (f"c-001:{zone}".encode(), envelope.data, envelope.headers())


async def _clues(database: Database, *clue_ids: str) -> int:
    return await count_rows(database, ClueRow, col(ClueRow.clue_id).in_(clue_ids))


async def _committed_at(bootstrap: str, group: str, topic: str, offset: int) -> bool:
    return (await committed_offsets(bootstrap, group)).get((topic, 0)) == offset


def _retrying_consumer(database: Database, producer: Any) -> EventConsumer:
    """A batched consumer that tries a failing record three times, with a short back-off."""
    return EventConsumer(
        service=unique("cases"),
        database=database,
        dead_letter_producer=producer,
        max_attempts=3,
        retry_backoff_seconds=0.05,
        batch_size=100,
    )


async def test_a_batch_is_one_transaction(make_database: MakeDatabase, kafka: KafkaNode) -> None:
    """A crash inside the batch keeps none of it (SQLite would commit the first savepoint)."""
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])

    async def dies_on_the_third(
        session: AsyncSession, event: ClueRegistered, envelope: Envelope
    ) -> None:
        await handler(session, event, envelope)
        if event.clue_id.startswith("third"):
            raise ProcessDied()

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(ClueRegistered, dies_on_the_third)
        events = [clue_registered(clue_id=unique(name)) for name in ("first", "second", "third")]
        records = [
            record_of(envelope_of_event(event), topic=ClueRegistered.topic, offset=offset)
            for offset, event in enumerate(events)
        ]
        with pytest.raises(ProcessDied):
            await consumer.consume_batch(records)
        assert await _clues(database, *(event.clue_id for event in events)) == 0
        assert await count_rows(database, InboxEntry) == 0

        consumer.on(ClueRegistered, handler)
        outcomes = await consumer.consume_batch(records)
        assert outcomes == [Outcome.PROCESSED] * 3
        assert await consumer.consume_batch(records) == [Outcome.DUPLICATE] * 3
    assert await _clues(database, *(event.clue_id for event in events)) == 3
    assert await count_rows(database, InboxEntry) == 3


async def test_a_batch_is_applied_once_and_committed_once_per_batch(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    """Many records, several zones, duplicates inside the batch, and a redelivery after a
    crash between the database commit and the offset commit: each effect exactly once."""
    topic = unique("test.batch.once")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    batches: list[list[tuple[int, Outcome]]] = []
    died = asyncio.Event()

    class DiesBeforeAck(EventConsumer):
        async def consume_batch(self, records: list[Record]) -> list[Outcome]:  # type: ignore[override]
            outcomes = await super().consume_batch(records)
            batches.append([(r.offset, o) for r, o in zip(records, outcomes, strict=True)])
            if not died.is_set():
                died.set()
                raise RuntimeError("process died between the database commit and the ack")
            return outcomes

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = DiesBeforeAck(
            service=unique("cases"),
            database=database,
            dead_letter_producer=producer,
            retry_backoff_seconds=0.01,
            batch_size=100,
        )
        consumer.on(event_class, ClueRegisteredHandler([DEFAULT_RULES]))
        events = [clue_registered(event_class, zone=f"z-{n % 3}") for n in range(40)]
        envelopes = [envelope_of_event(event) for event in events]
        # The same event id published twice (a relay resend), inside one batch.
        records = [_kafka_record(env, env.zone_id) for env in envelopes]
        records.insert(10, records[3])
        offsets = await produce(kafka.bootstrap_servers, topic, records)
        async with running_broker(kafka.bootstrap_servers, consumer):
            await wait_until(
                lambda: _committed_at(
                    kafka.bootstrap_servers, consumer.consumer_name, topic, offsets[-1] + 1
                ),
                "every record to be committed",
            )
    seen = [outcome for batch in batches for _, outcome in batch]
    assert seen.count(Outcome.PROCESSED) == 40
    # The resend, and every record of the batch redelivered after the crash.
    assert Outcome.DUPLICATE in seen and Outcome.DEAD_LETTERED not in seen
    # Records came in batches (the first fetch alone held several).
    assert max(len(batch) for batch in batches) > 1
    assert await _clues(database, *(event.clue_id for event in events)) == 40
    assert await count_rows(database, InboxEntry) == 40
    audited = col(AuditEntry.record_id).in_([event.clue_id for event in events])
    assert await count_rows(database, AuditEntry, audited) == 40


async def test_a_failing_record_is_retried_alone_without_holding_other_keys(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.batch.failing")
    await create_topics(kafka.bootstrap_servers, topic)
    event_class = clue_event_class(topic)
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])
    # What happened, in order: ("applied", clue) after a record's effect, ("failed", clue).
    history: list[tuple[str, str]] = []

    async def flaky(session: AsyncSession, event: ClueRegistered, envelope: Envelope) -> None:
        # The effect is written before the failure: its savepoint must undo it alone.
        await handler(session, event, envelope)
        await session.flush()
        if event.clue_id.startswith(("broken", "hiccup")):
            failures = sum(1 for what, clue in history if clue == event.clue_id)
            if event.clue_id.startswith("broken") or failures == 0:
                history.append(("failed", event.clue_id))
                raise ConnectionError("downstream unavailable")
        if event.clue_id.startswith("rejected"):
            history.append(("failed", event.clue_id))
            raise PoisonEvent("subject cadre level is not handled by this zone")
        history.append(("applied", event.clue_id))

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = _retrying_consumer(database, producer)
        consumer.on(event_class, flaky)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        # Zone a: a1, broken, a2, hiccup, a3; zone b: b1..b4 interleaved; one rejected in b.
        names = ["a1", "b1", "broken", "b2", "a2", "rejected", "b3", "hiccup", "a3", "b4"]
        zones = {name: "z-b" if name[0] in "br" and name != "broken" else "z-a" for name in names}
        events = {
            name: clue_registered(event_class, zone=zones[name], clue_id=unique(name))
            for name in names
        }
        envelopes = {name: envelope_of_event(event) for name, event in events.items()}
        records = [_kafka_record(envelopes[name], zones[name]) for name in names]
        # Produced before the consumer starts, so the first fetch holds all of them.
        offsets = await produce(kafka.bootstrap_servers, topic, records)
        async with running_broker(kafka.bootstrap_servers, consumer):
            await wait_until(
                lambda: _committed_at(
                    kafka.bootstrap_servers, consumer.consumer_name, topic, offsets[-1] + 1
                ),
                "every record on the partition to be committed",
            )

    def clue(name: str) -> str:
        return events[name].clue_id

    applied = [c for what, c in history if what == "applied"]
    # Every good record once; the broken and rejected ones never.
    expected = {clue(n) for n in names if n not in ("broken", "rejected")}
    assert sorted(applied) == sorted(expected)
    for name in names:
        wanted = 0 if name in ("broken", "rejected") else 1
        assert await _clues(database, clue(name)) == wanted, name
        assert (
            await count_rows(database, InboxEntry, col(InboxEntry.event_id) == envelopes[name].id)
            == wanted
        ), name

    broken_attempts = [i for i, (what, c) in enumerate(history) if c == clue("broken")]
    assert len(broken_attempts) == 3  # once in the batch, twice alone
    # Not held: zone b was applied in the batch, before the broken record's retries.
    for name in ("b1", "b2", "b3", "b4"):
        assert history.index(("applied", clue(name))) < broken_attempts[1], name
    # Per-key order: zone a's later records only after the broken one was given up, in order.
    order_a = [applied.index(clue(n)) for n in ("a1", "a2", "hiccup", "a3")]
    assert order_a == sorted(order_a)
    for name in ("a2", "hiccup", "a3"):
        assert history.index(("applied", clue(name))) > broken_attempts[-1], name
    assert history.index(("applied", clue("a1"))) < broken_attempts[0]

    parked = await read_records(kafka.bootstrap_servers, consumer.dead_letter_topic, 2, settle=0.5)
    letters = {header_map(r)["ce_id"]: header_map(r) for r in parked}
    assert len(parked) == 2
    broken = letters[envelopes["broken"].id.encode()]
    assert broken["x-dead-letter-reason"] == b"handler-failed"
    assert broken["x-dead-letter-attempts"] == b"3"
    assert broken["x-original-offset"] == str(offsets[names.index("broken")]).encode()
    rejected = letters[envelopes["rejected"].id.encode()]
    assert rejected["x-dead-letter-reason"] == b"rejected"
    assert rejected["x-dead-letter-attempts"] == b"1"


async def test_failing_records_of_different_keys_are_retried_side_by_side(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    """Two zones' records keep failing: their retries back off together, not one after the
    other, and both are dead-lettered while the good record of the batch is kept."""
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])
    attempts: list[str] = []

    async def down_for_some(
        session: AsyncSession, event: ClueRegistered, envelope: Envelope
    ) -> None:
        if event.zone_id != "z-ok":
            attempts.append(event.zone_id)
            raise ConnectionError("downstream unavailable")
        await handler(session, event, envelope)

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = _retrying_consumer(database, producer)
        consumer.on(ClueRegistered, down_for_some)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        events = [clue_registered(zone=zone) for zone in ("z-a", "z-ok", "z-b")]
        records = [
            record_of(envelope_of_event(event), topic=ClueRegistered.topic, offset=offset)
            for offset, event in enumerate(events)
        ]
        outcomes = await consumer.consume_batch(records)
    assert outcomes == [Outcome.DEAD_LETTERED, Outcome.PROCESSED, Outcome.DEAD_LETTERED]
    assert await _clues(database, events[1].clue_id) == 1
    # In the batch a then b; then each retry round has both keys before the next round
    # (one after the other it would be a, a, b, b).
    assert attempts[:2] == ["z-a", "z-b"]
    assert sorted(attempts[2:4]) == ["z-a", "z-b"]
    assert sorted(attempts[4:]) == ["z-a", "z-b"]


async def test_a_batch_that_cannot_commit_is_applied_record_by_record(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    batches = 0

    class BatchCommitFails(EventConsumer):
        async def _apply_batch(self, pending: Any) -> Any:
            nonlocal batches
            batches += 1
            # As if the database refused the batch's transaction (e.g. locked past the timeout).
            raise OperationalError("COMMIT", {}, Exception("database is locked"))

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = BatchCommitFails(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(ClueRegistered, ClueRegisteredHandler([DEFAULT_RULES]))
        events = [clue_registered(zone=f"z-{n % 2}") for n in range(4)]
        records = [
            record_of(envelope_of_event(event), topic=ClueRegistered.topic, offset=offset)
            for offset, event in enumerate(events)
        ]
        records.append(records[1])  # a resend inside the batch
        outcomes = await consumer.consume_batch(records)
    assert batches == 1
    assert outcomes == [Outcome.PROCESSED] * 4 + [Outcome.DUPLICATE]
    assert await _clues(database, *(event.clue_id for event in events)) == 4
    assert await count_rows(database, InboxEntry) == 4
