"""Batch handlers: a run of a batch's records applied in one call, with the same effect.

Against real SQLite/PostgreSQL (and a real broker for the dead letters): cases' clue handler
and assessment's projection give the rows one-at-a-time consumption gives, in one statement per
table; a run that fails is undone as a whole and applied record by record, so only the failing
record is parked; records of other routes between runs keep their place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.store.projection import projection_rows
from services.assessment.synthetic import County, synthetic_events
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.tables import CaseFileRow, ClueRow, DeadlineRow
from services.contracts.intake import ClueRegistered
from services.contracts.staffing import UnitNamed
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer, Outcome, PoisonEvent, Record
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


def _clue_consumer(database: Database, producer: Any, *, batched: bool) -> EventConsumer:
    consumer = EventConsumer(
        service=unique("cases"), database=database, dead_letter_producer=producer, batch_size=50
    )
    clues = ClueRegisteredHandler([DEFAULT_RULES])
    consumer.on(ClueRegistered, clues, batch_handler=clues.apply_batch if batched else None)
    return consumer


async def _case_rows(database: Database) -> list[tuple[Any, ...]]:
    """Clues, case files, deadlines and audit entries, without the moments taken at apply time."""
    async with database.session() as session:
        clues = (await session.exec(select(ClueRow))).all()
        files = (await session.exec(select(CaseFileRow))).all()
        deadlines = (await session.exec(select(DeadlineRow))).all()
        entries = (
            await session.exec(select(audit.AuditEntry).order_by(col(audit.AuditEntry.seq)))
        ).all()
    return (
        sorted(("clue", *r.model_dump().values()) for r in clues)
        + sorted(
            ("file", *(v for k, v in r.model_dump().items() if k != "updated_at")) for r in files
        )
        + sorted(("deadline", *r.model_dump().values()) for r in deadlines)
        + [("audit", e.county_id, e.seq, e.action, e.record_id, e.detail) for e in entries]
    )


async def test_a_run_of_clues_gives_the_rows_of_one_at_a_time_in_one_insert_per_table(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    one_by_one, batched = await make_database("cases"), await make_database("cases")
    events = [clue_registered(zone=f"z-{n % 3}", clue_id=f"k-{n:03}") for n in range(30)]
    # The same clue again under another event id (a re-sent event): it registers nothing.
    events.insert(12, clue_registered(zone="z-0", clue_id="k-004"))
    records = [
        record_of(envelope_of_event(item), topic=ClueRegistered.topic, offset=offset)
        for offset, item in enumerate(events)
    ]
    async with started_producer(kafka.bootstrap_servers) as producer:
        alone = _clue_consumer(one_by_one, producer, batched=False)
        together = _clue_consumer(batched, producer, batched=True)
        # One clue on the ledger before, in both.
        assert await alone.consume(records[0]) == Outcome.PROCESSED
        assert await together.consume(records[0]) == Outcome.PROCESSED
        for record in records[1:]:
            assert await alone.consume(record) == Outcome.PROCESSED
        with statements_on(batched) as sent:
            outcomes = await together.consume_batch(records[1:])

    assert outcomes == [Outcome.PROCESSED] * (len(records) - 1)
    assert await _case_rows(batched) == await _case_rows(one_by_one)
    assert await count_rows(batched, ClueRow) == 30
    for table in ("clue", "case_file", "case_deadline", "inbox_entry"):
        inserts = [s for s in sent if s.split()[:3] == ["INSERT", "INTO", table]]
        assert len(inserts) == 1, (table, inserts)
    async with batched.session() as session:
        assert (await audit.verify(session, audit.audit_key_of(session))).ok


async def test_a_failing_run_is_undone_and_applied_record_by_record(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    clues = ClueRegisteredHandler([DEFAULT_RULES])

    async def one(session: AsyncSession, item: ClueRegistered, envelope: Envelope) -> None:
        await clues(session, item, envelope)
        if item.clue_id.startswith("broken"):
            raise PoisonEvent("not for this zone")

    async def together(
        session: AsyncSession, items: Sequence[tuple[ClueRegistered, Envelope]]
    ) -> None:
        # Writes every clue first: undoing the run must undo these too.
        await clues.apply_batch(session, items)
        if any(item.clue_id.startswith("broken") for item, _ in items):
            raise RuntimeError("a record of this run cannot be applied")

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"),
            database=database,
            dead_letter_producer=producer,
            batch_size=50,
        )
        consumer.on(ClueRegistered, one, batch_handler=together)
        await create_topics(kafka.bootstrap_servers, consumer.dead_letter_topic)
        names = [f"c{n}" for n in range(8)]
        names[3] = "broken"
        items = [
            clue_registered(zone=f"z-{n % 2}", clue_id=unique(name)) for n, name in enumerate(names)
        ]
        envelopes = [envelope_of_event(item) for item in items]
        records = [
            record_of(envelope, topic=ClueRegistered.topic, offset=offset)
            for offset, envelope in enumerate(envelopes)
        ]
        outcomes = await consumer.consume_batch(records)
        parked = await read_records(
            kafka.bootstrap_servers, consumer.dead_letter_topic, 1, settle=0.5
        )

    assert outcomes == [
        Outcome.DEAD_LETTERED if name == "broken" else Outcome.PROCESSED for name in names
    ]
    for name, item, envelope in zip(names, items, envelopes, strict=True):
        wanted = 0 if name == "broken" else 1
        assert await count_rows(database, ClueRow, col(ClueRow.clue_id) == item.clue_id) == wanted
        assert (
            await count_rows(database, CaseFileRow, col(CaseFileRow.case_id) == item.clue_id)
            == wanted
        )
        inbox = col(InboxEntry.event_id) == envelope.id
        assert await count_rows(database, InboxEntry, inbox) == wanted
    assert [header_map(r)["ce_id"] for r in parked] == [envelopes[3].id.encode()]
    async with database.session() as session:
        result = await audit.verify(session, audit.audit_key_of(session))
        seqs = (await session.exec(select(audit.AuditEntry.seq))).all()
    assert result.ok, result
    assert sorted(seq or 0 for seq in seqs) == list(range(1, 8))


async def test_a_record_of_another_route_closes_the_run_and_keeps_its_place(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    calls: list[tuple[str, ...]] = []

    async def one(session: AsyncSession, item: Any, envelope: Envelope) -> None:
        calls.append(("one", getattr(item, "clue_id", "") or item.unit_id))

    async def together(session: AsyncSession, items: Sequence[tuple[Any, Envelope]]) -> None:
        calls.append(("run", *(item.clue_id for item, _ in items)))

    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("cases"), database=database, dead_letter_producer=producer
        )
        consumer.on(ClueRegistered, one, batch_handler=together)
        consumer.on(UnitNamed, one)
        clue = [clue_registered(clue_id=f"k-{n}") for n in range(5)]
        named = UnitNamed(
            county_id="c-001", zone_id="z-01", kind="zone", unit_id="z-01", name="一区"
        )
        envelopes = [envelope_of_event(item) for item in clue]
        named_envelope = Envelope(
            id=unique("named"),
            type=UnitNamed.event_type,
            source="xiezuo/staffing",
            time=envelopes[0].time,
            county_id="c-001",
            zone_id="z-01",
            data=named.model_dump_json().encode(),
        )
        records: list[Record] = [
            record_of(envelopes[0], topic=ClueRegistered.topic, offset=0),
            record_of(envelopes[1], topic=ClueRegistered.topic, offset=1),
            record_of(named_envelope, topic=UnitNamed.topic, offset=2),
            record_of(envelopes[2], topic=ClueRegistered.topic, offset=3),
            # The same event delivered twice in one batch: the second is a duplicate.
            record_of(envelopes[2], topic=ClueRegistered.topic, offset=4),
            record_of(envelopes[3], topic=ClueRegistered.topic, offset=5),
            record_of(envelopes[4], topic=ClueRegistered.topic, offset=6),
        ]
        outcomes = await consumer.consume_batch(records)

    assert outcomes == [Outcome.PROCESSED] * 4 + [Outcome.DUPLICATE] + [Outcome.PROCESSED] * 2
    assert calls == [
        ("run", "k-0", "k-1"),
        ("one", "z-01"),
        # k-2 alone (a run of one goes to the per-record handler), then the rest.
        ("one", "k-2"),
        ("run", "k-3", "k-4"),
    ]


async def test_the_projection_applied_in_runs_equals_one_event_at_a_time(
    make_database: MakeDatabase,
) -> None:
    one_by_one, batched = await make_database("assessment"), await make_database("assessment")
    consumers = []
    for database, size in ((one_by_one, 1), (batched, 100)):
        consumer = EventConsumer(
            service="assessment",
            database=database,
            dead_letter_producer=None,  # type: ignore[arg-type]  # every event is valid
            batch_size=size,
        )
        register_handlers(consumer, AssessmentCalendar(), projections())
        consumers.append(consumer)
    records = [
        Record(
            item.event.topic,
            0,
            offset,
            f"{item.event.county_id}:{item.event.zone_id}".encode(),
            envelope.data,
            tuple(envelope.headers()),
        )
        for offset, item in enumerate(synthetic_events(600, seed=5, county=County()))
        for envelope in [
            Envelope(
                id=item.event_id,
                type=item.event.event_type,
                source="xiezuo/test",
                time=item.ce_time,
                county_id=item.event.county_id,
                zone_id=item.event.zone_id,
                data=item.event.model_dump_json().encode(),
            )
        ]
    ]
    alone, together = consumers
    for record in records:
        assert await alone.consume(record) == Outcome.PROCESSED
    with statements_on(batched) as sent:
        for start in range(0, len(records), 100):
            outcomes = await together.consume_batch(records[start : start + 100])
            assert outcomes == [Outcome.PROCESSED] * len(outcomes)

    async with one_by_one.session() as session:
        expected = await projection_rows(session)
    async with batched.session() as session:
        assert await projection_rows(session) == expected
    # The tallies of a batch of 100 events in one upsert, not one per event.
    tally_upserts = [s for s in sent if s.split()[:3] == ["INSERT", "INTO", "kpi_tally"]]
    assert len(tally_upserts) <= 6


async def test_each_record_of_a_run_gets_its_consumer_span_under_its_publisher(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = _clue_consumer(database, producer, batched=True)
        consumer.tracer_provider = provider
        parents = [(f"{n + 1:032x}", f"{n + 1:016x}") for n in range(4)]
        records = [
            dataclasses.replace(
                record_of(envelope_of_event(clue_registered()), topic=ClueRegistered.topic),
                offset=offset,
            )
            for offset in range(4)
        ]
        records = [
            dataclasses.replace(
                record,
                headers=(*record.headers, ("traceparent", f"00-{trace}-{span}-01".encode())),
            )
            for record, (trace, span) in zip(records, parents, strict=True)
        ]
        assert await consumer.consume_batch(records) == [Outcome.PROCESSED] * 4

    spans = [s for s in exporter.get_finished_spans() if s.name.endswith(" process")]
    assert sorted(
        (f"{s.context.trace_id:032x}", f"{s.parent.span_id:016x}") for s in spans if s.parent
    ) == sorted(parents)
    assert [(s.attributes or {}).get("messaging.kafka.offset") for s in spans] == [0, 1, 2, 3]
