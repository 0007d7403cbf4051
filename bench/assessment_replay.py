"""Rebuilding assessment's KPI projections from synthetic events, then ranking queries.

Run: ``.venv/bin/python bench/assessment_replay.py [--events N] [--batch B] [--consumer-events M]
[--live-events L] [--live-path rebuild|consumer] [--rebuild-batch R] [--rebuild-workers W]
[--consumer-batch C] [--live-check] [--database-url URL | --postgres]`` (SQLite in a temp dir
by default).

What is measured (one JSON object is printed; timings are never asserted):
- ``rebuild``: the rebuild path straight against the database, no Kafka: each event's JSON
  payload is parsed into its contract class, mapped to facts, fanned out to projection
  increments and written (tallies upserted, one contribution row per increment) in
  transactions of `--batch` events. Generating the synthetic JSON is outside the timer.
- ``consumer``: the live path for `--consumer-events` events: EventConsumer.consume, i.e. one
  transaction per event with its inbox row, as a Kafka record would be applied (no broker).
- ``live``: a projection rebuild through the live path for `--live-events` events: they are
  published to their topics on a private Kafka broker started here, then applied from Kafka
  into an empty database while the group's committed offsets are polled. ``--live-path
  rebuild`` (the default) reads them with ``ProjectionRebuild`` (services/assessment/rebuild.py:
  `--rebuild-batch` records per poll and transaction, bulk statements, what
  ``xiezuo assessment catch-up`` runs; with `--rebuild-workers` W > 1, W processes each apply
  a share of the partitions, as ``catch-up --workers W`` does); ``--live-path consumer`` with
  assessment's own EventConsumer subscribed through FastStream exactly as the service host does it
  (``bind_consumer``), `--consumer-batch` records per transaction. ``events_per_second`` counts
  from the first commit of the group's offsets to the last (the start before it is reported
  apart): the rebuild's own commit times, or for the consumer the group's committed offsets
  polled every 50 ms. With
  ``--live-check`` the same events are also applied in-process, one record at a time, into
  another empty database (outside the timer) and ``equals_in_process_replay`` says whether the
  two projections are identical.
- ``ranking``: latency of Scoring.ranking (read tallies + marks, score, rank) per level after
  the rebuild, over `--queries` calls each.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.structs import TopicPartition
from sqlalchemy import func
from sqlmodel import select

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import increments_for, register_handlers
from services.assessment.rebuild import (
    ProjectionRebuild,
    RebuildProgress,
    Share,
    Subscriptions,
    run_shares,
)
from services.assessment.store.projection import apply_increments, projection_rows
from services.assessment.store.scorecards import Scoring
from services.assessment.store.tables import KpiContribution, KpiTally
from services.assessment.synthetic import County, synthetic_events
from services.runtime.bus import bind_consumer, build_broker
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.host import ensure_topics
from services.runtime.inbox import EventConsumer, Record
from services.runtime.localstack import KafkaNode, PostgresCluster
from services.runtime.migrate import upgrade_async
from services.runtime.settings import PlatformSettings


class _NoDeadLetters:
    """The benchmark's events are all valid; a dead-letter send would be a bug."""

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> Any:
        raise RuntimeError(f"unexpected dead letter on {topic}")


def _envelopes(count: int, seed: int, county: County) -> list[Envelope]:
    return [
        Envelope(
            id=item.event_id,
            type=item.event.event_type,
            source="xiezuo/bench",
            time=item.ce_time,
            county_id=item.event.county_id,
            zone_id=item.event.zone_id,
            data=item.event.model_dump_json().encode(),
        )
        for item in synthetic_events(count, seed=seed, county=county)
    ]


async def rebuild(database: Database, events: int, batch: int, county: County) -> dict[str, Any]:
    """Time the batched rebuild path over `events` synthetic events."""
    calendar = AssessmentCalendar()
    routes = {p.event_class.event_type: p for p in projections()}
    elapsed, done, seed = 0.0, 0, 1
    while done < events:
        size = min(batch, events - done)
        envelopes = _envelopes(size, seed, county)
        seed += 1
        started = time.perf_counter()
        applied = []
        for envelope in envelopes:
            route = routes[envelope.type]
            event = route.event_class.model_validate_json(envelope.data)
            applied.append((envelope.id, increments_for(route.mapper, event, envelope, calendar)))
        async with database.transaction() as session:
            await apply_increments(session, applied)
        elapsed += time.perf_counter() - started
        done += size
    async with database.session() as session:
        tallies = (await session.exec(select(func.count()).select_from(KpiTally))).one()
        contributions = (
            await session.exec(select(func.count()).select_from(KpiContribution))
        ).one()
    return {
        "events": events,
        "batch_events": batch,
        "seconds": round(elapsed, 2),
        "events_per_second": round(events / elapsed),
        "tally_rows": tallies,
        "contribution_rows": contributions,
    }


async def consume(database: Database, events: int, county: County) -> dict[str, Any]:
    """Time the live consumer path (one transaction + inbox row per event)."""
    consumer = EventConsumer(
        service="assessment-bench", database=database, dead_letter_producer=_NoDeadLetters()
    )
    register_handlers(consumer, AssessmentCalendar(), projections())
    records = [
        Record("bench", 0, offset, None, envelope.data, tuple(envelope.headers()))
        for offset, envelope in enumerate(_envelopes(events, 10_000, county))
    ]
    started = time.perf_counter()
    for record in records:
        await consumer.consume(record)
    elapsed = time.perf_counter() - started
    return {
        "events": events,
        "seconds": round(elapsed, 2),
        "events_per_second": round(events / elapsed),
    }


def _assessment_consumer(database: Database, consumer_batch: int) -> EventConsumer:
    consumer = EventConsumer(
        service="assessment", database=database, dead_letter_producer=_NoDeadLetters()
    )
    register_handlers(consumer, AssessmentCalendar(), projections())
    if consumer_batch > 1 and hasattr(consumer, "batch_size"):
        consumer.batch_size = consumer_batch
    return consumer


async def live(
    database: Database,
    events: int,
    county: County,
    consumer_batch: int,
    reference: Database | None,
    path: str = "rebuild",
    rebuild_batch: int = 5_000,
    rebuild_workers: int = 1,
) -> dict[str, Any]:
    """Time a rebuild through Kafka → EventConsumer → database on a private broker.

    With a `reference` database, the same events are also applied there in-process, one
    record at a time, and the two projections are compared.
    """
    consumer = _assessment_consumer(database, consumer_batch)
    subscriptions = _rebuild_subscriptions(database)
    items = list(synthetic_events(events, seed=20_000, county=county))
    async with KafkaNode(partitions=3) as node:
        bootstrap = node.bootstrap_servers
        await ensure_topics(
            bootstrap, consumer.dead_letter_topic, partitions=3, replication_factor=1
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        try:
            sent = [
                await producer.send(
                    item.event.topic,
                    item.event.model_dump_json().encode(),
                    key=item.event.partition_key().encode(),
                    headers=Envelope(
                        id=item.event_id,
                        type=item.event.event_type,
                        source="xiezuo/bench",
                        time=item.ce_time,
                        county_id=item.event.county_id,
                        zone_id=item.event.zone_id,
                        data=b"",
                    ).headers(),
                )
                for item in items
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        # The benchmark's own objects (every event it published, kept for --live-check) are
        # not the consumer's: left to the collector, each full collection would walk them all.
        gc.freeze()
        if path == "rebuild":
            rebuild = ProjectionRebuild(subscriptions, bootstrap, batch_records=rebuild_batch)
            started = time.time()
            try:
                if rebuild_workers == 1:
                    progress = await rebuild.run()
                else:
                    worker = functools.partial(
                        _rebuild_share, database.url, bootstrap, rebuild_batch
                    )
                    progress = await run_shares(rebuild, rebuild_workers, worker)
                offsets = await admin.list_consumer_group_offsets(consumer.group_id)
            finally:
                await admin.close()
            # Timed from the rebuild's own offset commits, as the poller below would time
            # them, without a poll every 50 ms taking its share of the two cores meanwhile.
            first, last = progress.first_commit_at, progress.last_commit_at
            assert first is not None and last is not None, "nothing was committed"
            applied = progress.records - progress.first_commit_records
            result = {
                "events": events,
                "committed": sum(meta.offset for meta in offsets.values() if meta.offset > 0),
                "seconds_to_first_commit": round(first - started, 2),
                "seconds_from_first_commit": round(last - first, 2),
                "events_per_second": round(applied / (last - first)) if last > first else None,
            }
            result["path"] = "ProjectionRebuild"
            result["workers"] = rebuild_workers
            result["records_per_poll"] = rebuild_batch
            result["handed_to_consumer"] = progress.by_consumer
            result["reading_seconds"] = round(progress.reading_seconds, 2)
            result["writing_seconds"] = round(progress.writing_seconds, 2)
        else:
            broker = build_broker(bootstrap, client_id="xiezuo-assessment-bench")
            bind_consumer(broker, consumer)
            try:
                result = await _catch_up(admin, broker.start, consumer.group_id, events)
            finally:
                await broker.stop()
                await admin.close()
            result["path"] = "EventConsumer via bind_consumer"
            result["records_per_transaction"] = getattr(consumer, "batch_size", 1)
    if reference is not None:
        alone = _assessment_consumer(reference, 1)
        for offset, item in enumerate(items):
            envelope = Envelope(
                id=item.event_id,
                type=item.event.event_type,
                source="xiezuo/bench",
                time=item.ce_time,
                county_id=item.event.county_id,
                zone_id=item.event.zone_id,
                data=item.event.model_dump_json().encode(),
            )
            await alone.consume(
                Record("ref", 0, offset, None, envelope.data, tuple(envelope.headers()))
            )
        async with database.session() as session:
            built = await projection_rows(session)
        async with reference.session() as session:
            expected = await projection_rows(session)
        result["equals_in_process_replay"] = built == expected
    return result


def _rebuild_subscriptions(database: Database) -> Subscriptions:
    """Assessment's handlers on a consumer of `database`, as a ProjectionRebuild applies them."""
    subscriptions = Subscriptions(
        EventConsumer(
            service="assessment", database=database, dead_letter_producer=_NoDeadLetters()
        )
    )
    register_handlers(subscriptions, AssessmentCalendar(), projections())
    return subscriptions


def _rebuild_share(url: str, bootstrap: str, batch: int, share: Share) -> RebuildProgress:
    """One worker process's share of a rebuild, as `catch-up --workers` runs it."""
    return asyncio.run(_apply_share(url, bootstrap, batch, share))


async def _apply_share(url: str, bootstrap: str, batch: int, share: Share) -> RebuildProgress:
    database = Database(url)
    try:
        rebuild = ProjectionRebuild(
            _rebuild_subscriptions(database), bootstrap, batch_records=batch
        )
        return await rebuild.run(share=share)
    finally:
        await database.dispose()


async def _catch_up(
    admin: AIOKafkaAdminClient,
    start: Callable[[], Awaitable[None]],
    group: str,
    events: int,
) -> dict[str, Any]:
    """Start applying and poll the group's committed offsets until all are applied."""
    started = time.perf_counter()
    await start()
    first: tuple[float, int] | None = None
    done = 0
    while done < events:
        await asyncio.sleep(0.05)
        try:
            offsets: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(group)
        except GroupCoordinatorNotAvailableError:
            continue  # a fresh broker still electing the group's coordinator
        done = sum(meta.offset for meta in offsets.values() if meta.offset > 0)
        now = time.perf_counter()
        if first is None and done > 0:
            first = (now, done)
    end = time.perf_counter()
    assert first is not None, "nothing was committed"
    applied = done - first[1]
    return {
        "events": events,
        "committed": done,
        "seconds_to_first_commit": round(first[0] - started, 2),
        "seconds_from_first_commit": round(end - first[0], 2),
        "events_per_second": round(applied / (end - first[0])) if end > first[0] else None,
    }


async def rankings(database: Database, county: County, queries: int) -> dict[str, Any]:
    """Latency of the ranking query per level, after the rebuild."""
    scoring = Scoring(load_rules())
    result: dict[str, Any] = {}
    for level in Level:
        samples = []
        units = 0
        for _ in range(queries):
            started = time.perf_counter()
            async with database.session() as session:
                ranking = await scoring.ranking(
                    session, county_id=county.county_id, level=level, quarter=Quarter(2026, 3)
                )
            samples.append((time.perf_counter() - started) * 1000)
            units = len(ranking.units)
        samples.sort()
        result[level.value] = {
            "units": units,
            "queries": queries,
            "p50_ms": round(statistics.median(samples), 2),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        }
    return result


async def main() -> None:
    """Parse arguments, run the three measurements, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="straight rebuild (0 skips it)"
    )
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument(
        "--consumer-events", type=int, default=5_000, help="one at a time (0 skips it)"
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--live-events", type=int, default=20_000, help="through Kafka (0 skips the broker)"
    )
    parser.add_argument(
        "--consumer-batch",
        type=int,
        default=PlatformSettings().consumer_batch_size,
        help="live path: records per transaction (default: the services' setting)",
    )
    parser.add_argument(
        "--live-path",
        choices=("rebuild", "consumer"),
        default="rebuild",
        help="live path: ProjectionRebuild (bulk) or the service's EventConsumer",
    )
    parser.add_argument(
        "--rebuild-batch", type=int, default=5_000, help="live path: records per rebuild poll"
    )
    parser.add_argument(
        "--rebuild-workers",
        type=int,
        default=1,
        help="live path: ProjectionRebuild's worker processes (catch-up --workers)",
    )
    parser.add_argument(
        "--live-check", action="store_true", help="live path: compare with an in-process replay"
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--postgres", action="store_true", help="start a private PostgreSQL cluster and use it"
    )
    args = parser.parse_args()
    # The live path needs empty databases: fresh SQLite files unless --postgres.
    args.live_urls = []
    if args.postgres:
        cluster = PostgresCluster()
        await cluster.astart()
        try:
            args.database_url = await cluster.acreate_database("assessment_bench")
            args.live_urls = [
                await cluster.acreate_database("assessment_live"),
                await cluster.acreate_database("assessment_live_reference"),
            ]
            await _run(args)
        finally:
            await cluster.astop()
    else:
        await _run(args)


async def _run(args: argparse.Namespace) -> None:
    """The measurements against the chosen database."""
    county = County()
    with tempfile.TemporaryDirectory() as scratch:
        rebuild_url = (
            args.database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'rebuild.sqlite3'}"
        )
        consumer_url = f"sqlite+aiosqlite:///{Path(scratch) / 'consumer.sqlite3'}"
        await upgrade_async("assessment", rebuild_url)
        rebuilt_db = Database(rebuild_url)
        report: dict[str, Any] = {
            "database": rebuilt_db.engine.dialect.name,
            "county": {
                "zones": county.zones,
                "townships": county.zones * county.townships_per_zone,
                "people": county.zones * county.townships_per_zone * county.people_per_township,
            },
        }
        try:
            if args.events:
                report["rebuild"] = await rebuild(rebuilt_db, args.events, args.batch, county)
                report["ranking_2026Q3"] = await rankings(rebuilt_db, county, args.queries)
        finally:
            await rebuilt_db.dispose()
        if args.consumer_events:
            if args.database_url:
                consumer_url = args.database_url
                consumer_county = County(county_id="c-consumer")
            else:
                await upgrade_async("assessment", consumer_url)
                consumer_county = county
            consumer_db = Database(consumer_url)
            try:
                report["consumer"] = await consume(
                    consumer_db, args.consumer_events, consumer_county
                )
            finally:
                await consumer_db.dispose()
        if args.live_events:
            report["live"] = await _live(args, scratch, county)
    print(json.dumps(report, indent=2))


async def _live(args: argparse.Namespace, scratch: str, county: County) -> dict[str, Any]:
    """The live-path measurement on empty databases of its own."""
    urls = args.live_urls or [
        f"sqlite+aiosqlite:///{Path(scratch) / name}"
        for name in ("live.sqlite3", "live-reference.sqlite3")
    ]
    for url in urls:
        await upgrade_async("assessment", url)
    live_db, reference_db = Database(urls[0]), Database(urls[1])
    try:
        result = await live(
            live_db,
            args.live_events,
            county,
            args.consumer_batch,
            reference_db if args.live_check else None,
            args.live_path,
            args.rebuild_batch,
            args.rebuild_workers,
        )
    finally:
        await live_db.dispose()
        await reference_db.dispose()
    return {"database": live_db.engine.dialect.name, **result}


if __name__ == "__main__":
    asyncio.run(main())
