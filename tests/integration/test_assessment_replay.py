"""Rebuildable: replaying the Kafka log from the beginning into an empty database (a fresh
consumer group) gives identical projection rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.collaboration import COLLABORATION_EVENTS
from services.assessment.handlers.mappers import Projection, projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.rebuild import (
    ProjectionRebuild,
    RebuildProgress,
    Share,
    Subscriptions,
    deal_partitions,
    run_shares,
)
from services.assessment.store.projection import projection_rows
from services.assessment.synthetic import County, synthetic_events
from services.contracts.base import IntegrationEvent
from services.contracts.cases import ClueDisposed, DeadlineBreached
from services.contracts.intake import ClueRegistered
from services.contracts.staffing import AttendanceRecorded, TownshipPlaced, UnitNamed
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    committed_offsets,
    count_rows,
    create_topics,
    header_map,
    produce,
    read_records,
    running_broker,
    started_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka

EVENTS = 400


def _private(event_class: type[IntegrationEvent], topics: dict[str, str]) -> type[IntegrationEvent]:
    """The same contract (type name, handler) on a topic private to this test."""
    topic = topics.setdefault(event_class.topic, unique("assessment-replay"))
    return type(
        f"{event_class.__name__}Private", (event_class,), {"topic": topic, "__module__": __name__}
    )


def _named(topics: dict[str, str]) -> type[UnitNamed]:
    named = _private(UnitNamed, topics)
    assert issubclass(named, UnitNamed)
    return named


def _record(
    event: IntegrationEvent, event_id: str, ce_time: datetime
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    envelope = Envelope(
        id=event_id,
        type=event.event_type,
        source="xiezuo/test",
        time=ce_time,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
    )
    return event.partition_key().encode(), envelope.data, envelope.headers()


async def _consume_all(
    kafka: KafkaNode,
    database: Database,
    private: list[Projection],
    placed_class: type[TownshipPlaced],
    attendance: type[AttendanceRecorded],
    expected: int,
    topics: dict[str, str],
) -> list[tuple[object, ...]]:
    async with started_producer(kafka.bootstrap_servers) as producer:
        # A new service name is a new consumer group: it starts at the beginning of the log.
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        # Every subscription on a private topic: the session broker's real topics hold other
        # tests' records, which a fresh group would read too.
        register_handlers(
            consumer,
            AssessmentCalendar(),
            private,
            placed_class,
            attendance_class=attendance,
            collaboration_classes=[_private(c, topics) for c in COLLABORATION_EVENTS],
            unit_named_class=_named(topics),
        )
        async with running_broker(kafka.bootstrap_servers, consumer):
            await wait_until(
                lambda: _inbox_has(database, consumer.consumer_name, expected),
                f"{expected} events in the inbox",
            )
    async with database.session() as session:
        return await projection_rows(session)


def _late_disposal(county_id: str) -> list[IntegrationEvent]:
    """A clue disposed after its disposal limit passed, and cases' breach of that limit."""
    return [
        ClueDisposed(
            county_id=county_id,
            zone_id="z-01",
            case_id="clue-late",
            township_id="t-01-00",
            action="approve_disposal",
            from_stage="disposal_proposed",
            to_stage="disposed",
            actor="p-head",
            rule_version="cn-default-2026.1",
            occurred_at=datetime(2026, 8, 1, tzinfo=UTC),
        ),
        DeadlineBreached(
            county_id=county_id,
            zone_id="z-01",
            deadline_id="deadline-late",
            case_id="clue-late",
            kind="disposal",
            due_at=datetime(2026, 7, 20, tzinfo=UTC),
            rule_version="cn-default-2026.1",
        ),
    ]


async def _inbox_has(database: Database, consumer: str, expected: int) -> bool:
    return await count_rows(database, InboxEntry, InboxEntry.consumer == consumer) >= expected


@dataclass
class PublishedLog:
    """A log on private topics, with the classes that route it."""

    topics: dict[str, str]
    private: list[Projection]
    placed_class: type[TownshipPlaced]
    attendance_class: type[AttendanceRecorded]
    # Records a consumer applies (the redelivered copy and any poison record excluded).
    applied: int


async def _published_log(kafka: KafkaNode, poison: bool = False) -> PublishedLog:
    """Publish a county's year of synthetic events and the odd cases a replay must survive."""
    topics: dict[str, str] = {}
    private = [Projection(_private(p.event_class, topics), p.mapper) for p in projections()]
    placed_class = _private(TownshipPlaced, topics)
    assert issubclass(placed_class, TownshipPlaced)
    attendance_class = _private(AttendanceRecorded, topics)
    assert issubclass(attendance_class, AttendanceRecorded)
    others: list[type[IntegrationEvent]] = [UnitNamed, *COLLABORATION_EVENTS]
    for other in others:
        _private(other, topics)
    await create_topics(kafka.bootstrap_servers, *topics.values(), partitions=3)

    by_topic: dict[str, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = {}
    classes = {p.event_class.event_type: p.event_class for p in private}
    county = County(county_id=unique("county"), zones=3, townships_per_zone=3)
    for item in synthetic_events(EVENTS, seed=11, county=county):
        topic = classes[item.event.event_type].topic
        by_topic.setdefault(topic, []).append(_record(item.event, item.event_id, item.ce_time))
    placed = TownshipPlaced(
        county_id=county.county_id,
        zone_id="z-02",
        township_id="t-idle",
        township_name="闲乡",
        effective_from=date(2026, 1, 1),
    )
    by_topic[placed_class.topic] = [
        _record(placed, unique("evt"), datetime(2026, 1, 1, tzinfo=UTC))
    ]
    # A day recorded, an older record arriving late, then a correction.
    for status, hour in (("present", 9), ("absent", 8), ("on_leave", 10)):
        recorded_at = datetime(2026, 7, 6, hour, tzinfo=UTC)
        marked = AttendanceRecorded(
            county_id=county.county_id,
            zone_id="z-01",
            person_id="p-01-00-00",
            day=date(2026, 7, 6),
            status=status,
            recorded_by="clerk",
            recorded_at=recorded_at,
        )
        by_topic.setdefault(attendance_class.topic, []).append(
            _record(marked, unique("evt"), recorded_at)
        )
    # A late disposal and its breach on different topics: consumed in either order.
    for event in _late_disposal(county.county_id):
        topic = classes[event.event_type].topic
        by_topic.setdefault(topic, []).append(
            _record(event, unique("evt"), datetime(2026, 8, 1, tzinfo=UTC))
        )
    # A redelivered record (the relay may publish twice after a crash) counts once.
    first_topic = next(iter(by_topic))
    by_topic[first_topic].append(by_topic[first_topic][0])
    if poison:
        # A clue whose payload misses its required fields, amid the others: dead-lettered.
        good = ClueRegistered.event_type
        headers = _record(placed, unique("evt"), datetime(2026, 1, 1, tzinfo=UTC))[2]
        headers = [(k, good.encode() if k == "ce_type" else v) for k, v in headers]
        by_topic[classes[good].topic].insert(
            EVENTS // 20,
            (b"k", b'{"county_id": "%s", "zone_id": "z-02"}' % county.county_id.encode(), headers),
        )
    for topic, records in by_topic.items():
        await produce(kafka.bootstrap_servers, topic, records)
    return PublishedLog(topics, private, placed_class, attendance_class, EVENTS + 6)


async def test_replaying_the_log_into_an_empty_database_gives_identical_projections(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    log = await _published_log(kafka)
    private, placed_class, attendance_class, topics = (
        log.private,
        log.placed_class,
        log.attendance_class,
        log.topics,
    )

    live = await _consume_all(
        kafka,
        await make_database("assessment"),
        private,
        placed_class,
        attendance_class,
        EVENTS + 6,
        topics,
    )
    rebuilt = await _consume_all(
        kafka,
        await make_database("assessment"),
        private,
        placed_class,
        attendance_class,
        EVENTS + 6,
        topics,
    )
    kinds = {row[0] for row in live}
    assert {
        "tally",
        "contribution",
        "unit",
        "campaign_clue",
        "milestone",
        "attendance",
        "clock",
        "breach",
    } <= kinds
    assert len([row for row in live if row[0] == "tally"]) > 50
    assert rebuilt == live


async def _as_the_consumer_builds(
    kafka: KafkaNode, make_database: MakeDatabase, log: PublishedLog
) -> list[tuple[object, ...]]:
    """The projection the service's consumer builds from `log`, in a database of its own."""
    return await _consume_all(
        kafka,
        await make_database("assessment"),
        log.private,
        log.placed_class,
        log.attendance_class,
        log.applied,
        log.topics,
    )


def _rebuild(
    bootstrap: str, database: Database, log: PublishedLog, consumer: EventConsumer, batch: int
) -> ProjectionRebuild:
    """Assessment's handlers on `consumer`, applied by a ProjectionRebuild of `batch` records."""
    subscriptions = Subscriptions(consumer)
    register_handlers(
        subscriptions,
        AssessmentCalendar(),
        log.private,
        log.placed_class,
        attendance_class=log.attendance_class,
        collaboration_classes=[_private(c, log.topics) for c in COLLABORATION_EVENTS],
        unit_named_class=_named(log.topics),
    )
    return ProjectionRebuild(subscriptions, bootstrap, batch_records=batch)


async def test_the_bulk_rebuild_builds_what_the_consumer_builds_and_parks_a_bad_record(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    log = await _published_log(kafka, poison=True)
    live = await _as_the_consumer_builds(kafka, make_database, log)
    database = await make_database("assessment")
    service = unique("assessment")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(service=service, database=database, dead_letter_producer=producer)
        # Small batches: several of them, written while the next is read.
        progress = await _rebuild(kafka.bootstrap_servers, database, log, consumer, 60).run()
        async with database.session() as session:
            assert await projection_rows(session) == live
        assert progress.applied == log.applied
        assert progress.duplicates == 1  # the record published twice
        assert progress.dead_lettered == 1
        # The bad record's batch went to the consumer, which parked that record alone.
        assert 0 < progress.by_consumer < progress.records
        parked = await read_records(kafka.bootstrap_servers, consumer.dead_letter_topic, 1)
        assert [header_map(r)["x-dead-letter-reason"] for r in parked] == [b"invalid-payload"]
        committed = await committed_offsets(kafka.bootstrap_servers, consumer.group_id)
        assert sum(committed.values()) == progress.records == log.applied + 2

        # Delivered again from the start (a crash between the commit and the offsets; here a
        # second group over the same inbox): every record is a duplicate, nothing changes.
        again = EventConsumer(
            service=service, database=database, dead_letter_producer=producer, group_prefix="again"
        )
        repeated = await _rebuild(kafka.bootstrap_servers, database, log, again, 500).run()
    assert repeated.applied == 0
    assert repeated.duplicates == log.applied + 1
    assert repeated.dead_lettered == 1  # parked again: at least once, never applied
    async with database.session() as session:
        assert await projection_rows(session) == live


def _share_worker(
    url: str, bootstrap: str, service: str, topics: dict[str, str], batch: int, share: Share
) -> RebuildProgress:
    """A rebuild worker process: the test's private classes made again from their topics."""

    async def apply() -> RebuildProgress:
        database = Database(url)
        log = PublishedLog(
            topics,
            [Projection(_private(p.event_class, topics), p.mapper) for p in projections()],
            _private(TownshipPlaced, topics),  # type: ignore[arg-type]
            _private(AttendanceRecorded, topics),  # type: ignore[arg-type]
            0,
        )
        try:
            async with started_producer(bootstrap) as producer:
                consumer = EventConsumer(
                    service=service, database=database, dead_letter_producer=producer
                )
                return await _rebuild(bootstrap, database, log, consumer, batch).run(share=share)
        finally:
            await database.dispose()

    return asyncio.run(apply())


async def test_worker_processes_sharing_the_partitions_build_what_the_consumer_builds(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    log = await _published_log(kafka)
    live = await _as_the_consumer_builds(kafka, make_database, log)
    database = await make_database("assessment")
    service = unique("assessment")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(service=service, database=database, dead_letter_producer=producer)
        planner = _rebuild(kafka.bootstrap_servers, database, log, consumer, 40)
        backlog = await planner.backlog()
        # Every record, the redelivered copy included, in partitions dealt to two workers.
        assert sum(backlog.values()) == log.applied + 1
        shares = deal_partitions(backlog, 2)
        assert len(shares) == 2
        dealt = sorted(tp for share in shares for tp in share)
        assert dealt == sorted((tp.topic, tp.partition) for tp, n in backlog.items() if n)
        worker = functools.partial(
            _share_worker, database.url, kafka.bootstrap_servers, service, log.topics, 40
        )
        progress = await run_shares(planner, 2, worker)
        assert progress.applied == log.applied
        assert progress.duplicates == 1
        assert progress.by_consumer == progress.dead_lettered == 0
        async with database.session() as session:
            assert await projection_rows(session) == live
        committed = await committed_offsets(kafka.bootstrap_servers, consumer.group_id)
        assert sum(committed.values()) == log.applied + 1
        assert set((await planner.backlog()).values()) == {0}
        # Nothing left: a second catch-up deals no share and starts no process.
        assert (await run_shares(planner, 2, worker)).records == 0


async def test_a_rebuild_batch_reads_only_after_the_other_worker_has_committed(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    log = await _published_log(kafka)
    database = await make_database("assessment")
    other = Database(database.url)
    first = (await read_records(kafka.bootstrap_servers, log.topics[ClueRegistered.topic], 1))[0]
    first_id = header_map(first)["ce_id"].decode()
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        rebuild = _rebuild(kafka.bootstrap_servers, database, log, consumer, 1_000)
        try:
            # Another worker's batch holds the write lock (SQLite) or the group's lock
            # (PostgreSQL) and has applied one of the records this rebuild is about to read.
            async with other.transaction() as session:
                connection = await session.connection()
                if database.is_sqlite:
                    await connection.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    await connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({rebuild.write_lock_key})"
                    )
                session.add(
                    InboxEntry(
                        consumer=consumer.consumer_name,
                        event_id=first_id,
                        event_type=ClueRegistered.event_type,
                        county_id="c",
                        processed_at=datetime.now(UTC),
                    )
                )
                await session.flush()
                running = asyncio.create_task(rebuild.run())
                await wait_until(lambda: _true(rebuild.progress.batches > 0), "a batch read")
                await asyncio.sleep(0.5)
                assert not running.done()
                assert rebuild.progress.applied == 0
            progress = await running
        finally:
            await other.dispose()
    # Its batch looked the inbox up after that commit: the record is a duplicate there, and
    # no batch failed on the inbox row and went to the consumer.
    assert progress.duplicates == 2  # that record, and the record published twice
    assert progress.applied == log.applied - 1
    assert progress.by_consumer == 0
    assert await count_rows(database, InboxEntry) == log.applied


async def _true(value: bool) -> bool:
    return value
