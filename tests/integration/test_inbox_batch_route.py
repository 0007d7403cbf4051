"""The batch route's own statements: one look-up and one insert of inbox rows per batch.

Against real SQLite/PostgreSQL (and a real broker for the dead letters): ids already applied,
before or earlier in the same batch, are skipped; a record that fails in the middle is parked
alone while the records around it get their inbox rows; and the statements a batch costs grow
by each record's savepoint and handler only, counted on the engine (not timed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.tables import ClueRow
from services.contracts.intake import ClueRegistered
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer, Outcome, PoisonEvent
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    clue_registered,
    count_rows,
    create_topics,
    envelope_of_event,
    header_map,
    read_records,
    record_of,
    started_producer,
    unique,
)

pytestmark = pytest.mark.kafka


@contextmanager
def statements_on(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the database's engine sends while the block runs."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def _inbox_rows(database: Database, *envelopes: Envelope) -> int:
    ids = [envelope.id for envelope in envelopes]
    return await count_rows(database, InboxEntry, col(InboxEntry.event_id).in_(ids))


async def test_ids_already_applied_are_skipped_inside_a_batch(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])
    applied: list[str] = []

    async def counting(session: AsyncSession, event: ClueRegistered, envelope: Envelope) -> None:
        await handler(session, event, envelope)
        applied.append(event.clue_id)

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(ClueRegistered, counting)
        events = {name: clue_registered(clue_id=unique(name)) for name in ("a", "b", "c", "d")}
        envelopes = {name: envelope_of_event(event) for name, event in events.items()}
        records = {
            name: record_of(envelope, topic=ClueRegistered.topic, offset=offset)
            for offset, (name, envelope) in enumerate(envelopes.items())
        }
        # a and b were applied by an earlier delivery (one at a time).
        assert await consumer.consume(records["a"]) == Outcome.PROCESSED
        assert await consumer.consume(records["b"]) == Outcome.PROCESSED
        # Redelivered among new ones, and c resent inside the same batch.
        batch = [records["a"], records["c"], records["b"], records["c"], records["d"]]
        outcomes = await consumer.consume_batch(batch)

    assert outcomes == [
        Outcome.DUPLICATE,
        Outcome.PROCESSED,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
        Outcome.PROCESSED,
    ]
    assert sorted(applied) == sorted(event.clue_id for event in events.values())
    clue_ids = [event.clue_id for event in events.values()]
    assert await count_rows(database, ClueRow, col(ClueRow.clue_id).in_(clue_ids)) == 4
    assert await _inbox_rows(database, *envelopes.values()) == 4


async def test_a_failing_record_in_the_middle_is_dead_lettered_alone(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])

    async def fails_on_broken(
        session: AsyncSession, event: ClueRegistered, envelope: Envelope
    ) -> None:
        # The effect is written first: only this record's savepoint may undo it.
        await handler(session, event, envelope)
        await session.flush()
        if event.clue_id.startswith("broken"):
            raise ConnectionError("downstream unavailable")
        if event.clue_id.startswith("rejected"):
            raise PoisonEvent("not for this zone")

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"),
            database=database,
            dead_letter_producer=producer,
            max_attempts=1,
            batch_size=100,
        )
        consumer.on(ClueRegistered, fails_on_broken)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        # Zone a: a1, broken, a2 (waits for broken, then goes in the next round); zone b around.
        names = ["a1", "b1", "broken", "b2", "rejected", "a2", "b3"]
        zones = {name: "z-b" if name[0] in "br" and name != "broken" else "z-a" for name in names}
        events = {name: clue_registered(zone=zones[name], clue_id=unique(name)) for name in names}
        envelopes = {name: envelope_of_event(event) for name, event in events.items()}
        records = [
            record_of(envelopes[name], topic=ClueRegistered.topic, offset=offset)
            for offset, name in enumerate(names)
        ]
        outcomes = dict(zip(names, await consumer.consume_batch(records), strict=True))
        parked = await read_records(
            kafka.bootstrap_servers, consumer.dead_letter_topic, 2, settle=0.5
        )

    for name in names:
        failed = name in ("broken", "rejected")
        assert outcomes[name] == (Outcome.DEAD_LETTERED if failed else Outcome.PROCESSED), name
        wanted = 0 if failed else 1
        clue = col(ClueRow.clue_id) == events[name].clue_id
        assert await count_rows(database, ClueRow, clue) == wanted, name
        assert await _inbox_rows(database, envelopes[name]) == wanted, name
    reasons = {header_map(r)["ce_id"]: header_map(r)["x-dead-letter-reason"] for r in parked}
    assert reasons == {
        envelopes["broken"].id.encode(): b"handler-failed",
        envelopes["rejected"].id.encode(): b"rejected",
    }


@pytest.mark.parametrize("size", [5, 40])
async def test_a_batch_costs_one_inbox_lookup_and_one_inbox_insert(
    make_database: MakeDatabase, kafka: KafkaNode, size: int
) -> None:
    database = await make_database("cases")

    async def reads_once(session: AsyncSession, event: ClueRegistered, envelope: Envelope) -> None:
        # One statement of its own (a handler that sends none opens no savepoint at all).
        await session.exec(select(literal(1)))

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(ClueRegistered, reads_once)
        envelopes = [envelope_of_event(clue_registered(zone=f"z-{n % 3}")) for n in range(size)]
        records = [
            record_of(envelope, topic=ClueRegistered.topic, offset=offset)
            for offset, envelope in enumerate(envelopes)
        ]
        with statements_on(database) as sent:
            outcomes = await consumer.consume_batch(records)
        with statements_on(database) as resent:
            again = await consumer.consume_batch(records)

    assert outcomes == [Outcome.PROCESSED] * size
    assert again == [Outcome.DUPLICATE] * size
    assert await _inbox_rows(database, *envelopes) == size
    inbox = [s for s in sent if "inbox_entry" in s]
    inserts = [s for s in inbox if s.lstrip().upper().startswith("INSERT")]
    # The look-up, the one insert, and on SQLite the write that opens the transaction.
    assert len(inserts) == 1
    assert len(inbox) == (3 if database.is_sqlite else 2)
    # Beyond those, per record: its SAVEPOINT, the handler's statement, its RELEASE.
    assert len(sent) == len(inbox) + 3 * size
    # A batch that is all redeliveries writes no inbox row.
    assert not [s for s in resent if s.lstrip().upper().startswith("INSERT")]


async def test_a_batch_audits_with_one_head_lock_and_one_insert(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    """Cases audits every clue; a batch chains the entries in memory and writes them at once,
    leaving out those of a record whose savepoint was undone: the chain verifies, gap-free."""
    database = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])

    async def fails_on_broken(
        session: AsyncSession, event: ClueRegistered, envelope: Envelope
    ) -> None:
        await handler(session, event, envelope)  # its audit entry is chained before the failure
        if event.clue_id.startswith("broken"):
            raise PoisonEvent("not for this zone")

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(ClueRegistered, fails_on_broken)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        names = [f"c{n}" for n in range(12)]
        names[5] = "broken"
        events = [
            clue_registered(zone=f"z-{n % 3}", clue_id=unique(name)) for n, name in enumerate(names)
        ]
        records = [
            record_of(envelope_of_event(event), topic=ClueRegistered.topic, offset=offset)
            for offset, event in enumerate(events)
        ]
        # The first one alone, so the county's chain head exists before the batch.
        assert await consumer.consume(records[0]) == Outcome.PROCESSED
        with statements_on(database) as sent:
            outcomes = await consumer.consume_batch(records[1:])

    assert outcomes.count(Outcome.PROCESSED) == 10
    assert outcomes[4] == Outcome.DEAD_LETTERED
    audit_statements = [s for s in sent if "audit_" in s]
    # The head locked and read once, one INSERT of 10 entries, the head moved once.
    assert len(audit_statements) == 3, audit_statements
    async with database.session() as session:
        result = await audit.verify(session, audit.audit_key_of(session))
        seqs = (await session.exec(select(audit.AuditEntry.seq))).all()
    assert result.ok, result
    assert sorted(seq or 0 for seq in seqs) == list(range(1, 12))
