"""Rebuilding the projection from the Kafka log in big batches, for when the group is far behind.

After `xiezuo projection rebuild assessment` has emptied the projection and rewound the group,
the service would replay the log through its consumer a hundred records per transaction.
`ProjectionRebuild` applies the same backlog through the same handlers with much less work per
record: thousands of records per poll, read and mapped in memory, written with a few bulk
statements per batch (one tally upsert of the batch's summed increments, one contribution
insert, one insert per row ledger, one inbox insert), the group's offsets committed only after
the database commit. A batch it cannot apply this way (a record that does not read, a type no
route takes, a handler that fails) goes to the service's EventConsumer, which retries and
dead-letters record by record exactly as the running service would.

One process reads and maps at about the rate SQLite writes, on one core. `run_shares` splits
the backlog's partitions between worker processes, each a `ProjectionRebuild` of its own, so
reading and mapping use every core while the writes still go one transaction at a time (each
batch's transaction takes the database's write lock first, see `_write`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import String, Table, any_, cast, func
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.handlers.ledgers import Ledger, RowLedger
from services.assessment.handlers.projection import ProjectionHandler, case_of, increments_for
from services.assessment.store.projection import (
    Contribution,
    apply_contributions,
    contributions_of,
)
from services.contracts.base import IntegrationEvent
from services.runtime.bulk import BulkInsert
from services.runtime.bus import record_of
from services.runtime.envelope import Envelope
from services.runtime.inbox import (
    IGNORED,
    BatchHandler,
    EventConsumer,
    Outcome,
    Unread,
    read_record,
)
from services.runtime.messaging_tables import InboxEntry

log = logging.getLogger(__name__)
_INBOX: Table = InboxEntry.__table__  # type: ignore[attr-defined]
E = TypeVar("E", bound=IntegrationEvent)
# Ids looked up in the inbox per statement (well under every driver's bound-parameter limit).
INBOX_LOOKUP_CHUNK = 1_000
# Records read between two turns of the event loop while the previous batch is written.
READ_SLICE = 200


# SQLite settings for a catch-up's connection. Neither weakens a commit: every transaction
# is still written and synced to the WAL before it returns (synchronous stays as it is), and
# the group's offsets are committed only after that, so a crash mid-catch-up loses no applied
# batch and re-delivers the unapplied one to the inbox's duplicate check. The WAL is only
# copied into the database file every ~256 MiB instead of every 4 MiB (each 5,000-record
# commit otherwise checkpointed), and the page cache holds the random-keyed indexes.
CATCH_UP_WAL_PAGES = 65_536
CATCH_UP_CACHE_KIB = 131_072
# New container objects between two young collections while a catch-up runs (CPython's
# default is 700). A batch keeps its records, envelopes, events and rows alive until it is
# written, tens of thousands of objects, so at the default each batch was collected young
# hundreds of times, promoted, and then swept again by full collections over the whole heap:
# 28-30 % of a worker's CPU (measured with gc.callbacks, bench/README.md "Session 19").
# At this threshold a young collection comes about once per batch read.
CATCH_UP_GC_YOUNG = 50_000


@contextlib.contextmanager
def collecting_per_batch() -> Iterator[None]:
    """Run the cyclic garbage collector about once a batch instead of every 700 objects.

    Nothing stops being collected, it is collected later; the process's thresholds are put
    back on the way out (a catch-up may run inside a longer-lived process, such as a test).
    """
    previous = gc.get_threshold()
    gc.set_threshold(CATCH_UP_GC_YOUNG, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch holds the write lock.

    The other workers wait for that lock, so a collection inside it stops them all; paused,
    it runs at the first allocation after (the commit has released the lock by then). The
    process's other tasks (the next batch being read) go uncollected meanwhile too.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _catch_up_pragmas(session: AsyncSession) -> None:
    connection = await session.connection()
    await connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={CATCH_UP_WAL_PAGES}")
    await connection.exec_driver_sql(f"PRAGMA cache_size=-{CATCH_UP_CACHE_KIB}")


@dataclass(frozen=True)
class Route:
    """One event type's handler, as the consumer has it."""

    event_class: type[IntegrationEvent]
    handler: Callable[[AsyncSession, Any, Envelope], Awaitable[None]]


class Subscriptions:
    """Subscribes on `consumer` and keeps every route, so a rebuild applies the same handlers."""

    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer
        self.routes: dict[str, Route] = {}

    def on(
        self,
        event_class: type[E],
        handler: Callable[[AsyncSession, E, Envelope], Awaitable[None]],
        *,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Route `event_class` on the consumer, and keep the route for the rebuild."""
        self.consumer.on(event_class, handler, batch_handler=batch_handler)
        self.routes[event_class.event_type] = Route(event_class, handler)


@dataclass
class _Item:
    """A record that read cleanly, with what its route will do with it."""

    envelope: Envelope
    event: IntegrationEvent
    route: Route
    # For counted events: its contribution rows, and the rows of its row-only ledgers.
    contributions: list[Contribution] | None = None
    rows: list[tuple[RowLedger, list[dict[str, Any]]]] = field(default_factory=list)
    ledgers: list[Ledger] = field(default_factory=list)


@dataclass
class RebuildProgress:
    """What a rebuild has done so far."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    # Records handed to the EventConsumer (a batch with something the bulk path does not take).
    by_consumer: int = 0
    batches: int = 0
    seconds: float = 0.0
    # Of which: reading and mapping records, and the database transactions.
    reading_seconds: float = 0.0
    writing_seconds: float = 0.0
    # When the group's offsets were first and last committed (time.time(), comparable between
    # worker processes), and how many records the first commit covered: a rebuild's rate is
    # timed from its own commits.
    first_commit_at: float | None = None
    first_commit_records: int = 0
    last_commit_at: float | None = None

    def add(self, other: RebuildProgress) -> None:
        """Count `other`'s work in this one (a worker's share of a rebuild).

        `seconds` stays the whole rebuild's time, not the sum of its workers'.
        """
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.first_commit_at is not None and (
            self.first_commit_at is None or other.first_commit_at < self.first_commit_at
        ):
            self.first_commit_at = other.first_commit_at
            self.first_commit_records = other.first_commit_records
        if other.last_commit_at is not None:
            self.last_commit_at = max(self.last_commit_at or 0.0, other.last_commit_at)

    def record_commit(self, records: int) -> None:
        """A batch of `records` had its offsets committed just now."""
        now = time.time()
        if self.first_commit_at is None:
            self.first_commit_at, self.first_commit_records = now, records
        self.last_commit_at = now


# Every field `add` sums: all but the whole rebuild's time and the commit times.
_COUNTERS = tuple(
    counter.name
    for counter in fields(RebuildProgress)
    if counter.name not in {"seconds", "first_commit_at", "first_commit_records", "last_commit_at"}
)


# A share of a rebuild's partitions, as a worker process is handed it: (topic, partition).
Share = list[tuple[str, int]]


def deal_partitions(backlog: Mapping[TopicPartition, int], workers: int) -> list[Share]:
    """Partitions with records to apply, dealt into at most `workers` shares of about equal size.

    Largest backlog first, each to the share with the fewest records so far (the first of
    them on a tie), so the same backlog always gives the same shares.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    shares: list[Share] = [[] for _ in range(workers)]
    sizes = [0] * workers
    for tp, records in sorted(backlog.items(), key=lambda item: (-item[1], item[0])):
        if records <= 0:
            continue
        smallest = sizes.index(min(sizes))
        shares[smallest].append((tp.topic, tp.partition))
        sizes[smallest] += records
    return [sorted(share) for share in shares if share]


class ProjectionRebuild:
    """Applies the group's backlog in big batches, then stops (the service carries on after).

    Run it with the service stopped (`xiezuo assessment catch-up`): it reads every partition
    of the consumer's topics from the group's committed offsets up to the log's end at start,
    and commits the group's offsets itself, from outside the group.
    """

    def __init__(
        self,
        subscriptions: Subscriptions,
        bootstrap_servers: str,
        *,
        batch_records: int = 5_000,
        kafka_options: dict[str, Any] | None = None,
    ) -> None:
        self.consumer = subscriptions.consumer
        self.routes = subscriptions.routes
        self.bootstrap_servers = bootstrap_servers
        self.batch_records = batch_records
        self.kafka_options = kafka_options or {}
        self.progress = RebuildProgress()
        # The batch's inbox rows bound by the driver, as the consumer binds its own.
        self._inbox_rows = BulkInsert(_INBOX)
        # The PostgreSQL advisory lock (its key) the group's rebuild workers take in turn.
        digest = hashlib.blake2b(self.consumer.group_id.encode(), digest_size=8).digest()
        self.write_lock_key = int.from_bytes(digest, "big", signed=True)

    def _kafka(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.consumer.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Big fetches: a poll should bring a whole batch, not a megabyte per partition.
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            **self.kafka_options,
        )

    async def backlog(self) -> dict[TopicPartition, int]:
        """Records from the group's committed offset to the log's end, per partition."""
        kafka = self._kafka()
        await kafka.start()
        try:
            partitions = await self._partitions()
            if not partitions:
                return {}
            kafka.assign(partitions)
            end = await kafka.end_offsets(partitions)
            return {tp: end[tp] - await kafka.position(tp) for tp in partitions}
        finally:
            await kafka.stop()

    async def run(
        self, stop: asyncio.Event | None = None, *, share: Share | None = None
    ) -> RebuildProgress:
        """Apply every record up to the log's end as it was at start (or until `stop` is set).

        With a `share`, only those partitions, and the WAL is left to whoever runs the others
        (`run_shares` truncates it once they are all done).
        """
        kafka = self._kafka()
        await kafka.start()
        started = time.perf_counter()
        try:
            if share is None:
                partitions = await self._partitions()
            else:
                partitions = [TopicPartition(topic, partition) for topic, partition in share]
            if partitions:
                with collecting_per_batch():
                    await self._apply_to_end(kafka, partitions, stop)
                if share is None:
                    await self.checkpoint()
        finally:
            self.progress.seconds += time.perf_counter() - started
            await kafka.stop()
        return self.progress

    async def _apply_to_end(
        self,
        kafka: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        stop: asyncio.Event | None,
    ) -> None:
        """Batches from `partitions` up to their end offsets at the start, applied in order."""
        # Partitions given, not subscribed: no rebalance, and the group's committed
        # offsets (the earliest record where it has none) are where each one starts.
        kafka.assign(partitions)
        end = await kafka.end_offsets(partitions)
        pending = {tp for tp in partitions if await kafka.position(tp) < end[tp]}
        # While one batch is written (the database works in its own thread, or server),
        # the next is fetched and read: batches still commit one after the other, in order.
        writing: asyncio.Task[None] | None = None
        try:
            while pending and not (stop is not None and stop.is_set()):
                fetched = await kafka.getmany(
                    *pending, timeout_ms=500, max_records=self.batch_records
                )
                records = [record for tp in fetched for record in fetched[tp]]
                if not records:
                    continue
                items = await self.read(records)
                if writing is not None:
                    await writing
                offsets = {
                    tp: OffsetAndMetadata(batch[-1].offset + 1, "")
                    for tp, batch in fetched.items()
                    if batch
                }
                writing = asyncio.create_task(self._store(kafka, records, items, offsets))
                pending = {tp for tp in pending if await kafka.position(tp) < end[tp]}
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()

    async def checkpoint(self) -> None:
        """On SQLite, copy the catch-up's long WAL into the database file now, not at the
        service's first commit."""
        if self.consumer.database.is_sqlite:
            async with self.consumer.database.engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the consumer's topics that exists on the broker."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, **self.kafka_options)
        await admin.start()
        try:
            described = await admin.describe_topics(self.consumer.topics())
        finally:
            await admin.close()
        return sorted(
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            if topic["error_code"] == 0
            for partition in topic["partitions"]
        )

    async def apply(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Apply `records` in one transaction, or hand them to the consumer when that fails."""
        await self.store(records, await self.read(records))

    async def _store(
        self,
        kafka: AIOKafkaConsumer,
        records: Sequence[ConsumerRecord[Any, Any]],
        items: list[_Item] | None,
        offsets: dict[TopicPartition, OffsetAndMetadata],
    ) -> None:
        await self.store(records, items)
        # Only now, after the database committed: a crash before this re-delivers the batch,
        # and the inbox turns every record of it into a duplicate.
        await kafka.commit(offsets)
        self.progress.record_commit(len(records))

    async def read(self, records: Sequence[ConsumerRecord[Any, Any]]) -> list[_Item] | None:
        """The records read and mapped (no database), or None for the consumer to apply."""
        started = time.perf_counter()
        items = await self._read(records)
        self.progress.reading_seconds += time.perf_counter() - started
        return items

    async def store(
        self, records: Sequence[ConsumerRecord[Any, Any]], items: list[_Item] | None
    ) -> None:
        """Write what `read` made of `records` in one transaction, or hand them to the consumer."""
        self.progress.records += len(records)
        self.progress.batches += 1
        if items is not None:
            started = time.perf_counter()
            try:
                # The other workers wait for the write lock: no collection while it is held.
                with collector_paused():
                    await self._write(items)
                self.progress.writing_seconds += time.perf_counter() - started
                return
            except Exception as exc:
                # Nothing of the batch was kept: the consumer applies it record by record,
                # retrying and dead-lettering the one that keeps failing.
                log.warning(
                    "rebuild batch failed, handing it to the consumer",
                    extra={"records": len(records), "error_type": type(exc).__name__},
                )
        self.progress.by_consumer += len(records)
        outcomes = await self.consumer.consume_batch([record_of(record) for record in records])
        self.progress.applied += outcomes.count(Outcome.PROCESSED)
        self.progress.duplicates += outcomes.count(Outcome.DUPLICATE)
        self.progress.ignored += outcomes.count(Outcome.IGNORED)
        self.progress.dead_lettered += outcomes.count(Outcome.DEAD_LETTERED)

    async def _read(self, records: Sequence[ConsumerRecord[Any, Any]]) -> list[_Item] | None:
        """Every record read and mapped, or None when one needs the consumer's judgement."""
        items: list[_Item] = []
        ignored = 0
        for index, record in enumerate(records):
            if index % READ_SLICE == 0:
                # Let the batch being written meanwhile send its next statement.
                await asyncio.sleep(0)
            read = read_record(
                record.headers or (),
                record.value,
                self.routes,
                counties=self.consumer.counties,
                known_types=self.consumer.known_types,
            )
            if isinstance(read, Unread):
                if read.reason == IGNORED:
                    ignored += 1  # another deployment's county, or another contract's event
                    continue
                return None  # unreadable, unknown, or a newer version: the consumer decides
            envelope, event, route = read.envelope, read.event, read.route
            item = _Item(envelope, event, route)
            handler = route.handler
            if isinstance(handler, ProjectionHandler):
                increments = increments_for(handler.mapper, event, envelope, handler.calendar)
                item.contributions = contributions_of(envelope.id, increments, case_of(event))
                for ledger in handler.ledgers:
                    if isinstance(ledger, RowLedger):
                        item.rows.append((ledger, ledger.rows(event, envelope)))
                    else:
                        item.ledgers.append(ledger)
            items.append(item)
        self.progress.ignored += ignored
        return items

    async def _write(self, items: list[_Item]) -> None:
        """One transaction: new records' effects in bulk, their inbox rows, then commit."""
        async with self.consumer.database.transaction() as session:
            await self._take_write_lock(session)
            seen = await self._already_applied(session, [item.envelope.id for item in items])
            contributions: list[Contribution] = []
            rows: dict[RowLedger, list[dict[str, Any]]] = {}
            inbox: list[dict[str, Any]] = []
            now = datetime.now(UTC)
            for item in items:
                envelope = item.envelope
                if envelope.id in seen:
                    # Re-delivered, or published twice: applied once already.
                    self.progress.duplicates += 1
                    continue
                seen.add(envelope.id)
                if item.contributions is None:
                    await item.route.handler(session, item.event, envelope)
                else:
                    # Counts and row-only ledgers are written once for the whole batch (no
                    # handler reads them); other ledgers run now, in the records' order.
                    contributions.extend(item.contributions)
                    for ledger, ledger_rows in item.rows:
                        rows.setdefault(ledger, []).extend(ledger_rows)
                    for other in item.ledgers:
                        await other(session, item.event, envelope)
                inbox.append(self.consumer.inbox_row(envelope, now))
            await apply_contributions(session, contributions)
            for ledger, collected in rows.items():
                await ledger.insert_all(session, collected)
            if inbox:
                await self._inbox_rows.rows(await session.connection(), inbox)
        self.progress.applied += len(inbox)

    async def _take_write_lock(self, session: AsyncSession) -> None:
        """Start the batch's transaction holding the database's write lock (SQLite), or the
        group's own lock (PostgreSQL): workers sharing a rebuild write one at a time.

        The handlers that read what they write (limit clocks, attendance, the registry) then
        read rows no other worker is changing, as they would in one process; and while a
        worker waits here, it goes on reading and mapping its next batch.
        """
        connection = await session.connection()
        if self.consumer.database.is_sqlite:
            await _catch_up_pragmas(session)
            # Before any read: a deferred transaction that read first could not take the
            # lock later without failing if another worker committed in between.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await connection.execute(sql_select(func.pg_advisory_xact_lock(self.write_lock_key)))

    async def _already_applied(self, session: AsyncSession, ids: list[str]) -> set[str]:
        """Which of `ids` this consumer's inbox holds."""
        consumer = col(InboxEntry.consumer) == self.consumer.consumer_name
        unique = sorted(set(ids))
        if not self.consumer.database.is_sqlite:
            # One array parameter: an IN list of thousands of parameters took PostgreSQL
            # a fifth of a second per thousand ids to plan.
            query = select(InboxEntry.event_id).where(
                consumer, col(InboxEntry.event_id) == any_(cast(unique, ARRAY(String)))
            )
            return set((await session.exec(query)).all())
        found: set[str] = set()
        for start in range(0, len(unique), INBOX_LOOKUP_CHUNK):
            chunk = unique[start : start + INBOX_LOOKUP_CHUNK]
            query = select(InboxEntry.event_id).where(consumer, col(InboxEntry.event_id).in_(chunk))
            found.update((await session.exec(query)).all())
        return found


async def run_shares(
    rebuild: ProjectionRebuild,
    workers: int,
    worker: Callable[[Share], RebuildProgress],
) -> RebuildProgress:
    """Apply `rebuild`'s backlog in `workers` processes, each calling `worker` with its share;
    what they did between them (`rebuild` itself only plans and checkpoints).

    `worker` must be picklable (a module-level function, or a partial of one): it runs in a
    fresh interpreter and builds its own `ProjectionRebuild` to `run(share=...)`. The shares
    are fixed here, from the backlog at start, so no partition is applied by two workers.
    If a worker fails, the others finish their shares and the error is raised after them;
    every batch applied so far has its offsets committed, so running the catch-up again
    carries on from there.
    """
    started = time.perf_counter()
    shares = deal_partitions(await rebuild.backlog(), workers)
    total = RebuildProgress()
    if shares:
        loop = asyncio.get_running_loop()
        # Spawned, not forked: the parent's event loop, Kafka client and engine stay behind.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=len(shares), mp_context=context) as pool:
            done = await asyncio.gather(
                *(loop.run_in_executor(pool, worker, share) for share in shares),
                return_exceptions=True,
            )
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
            total.add(outcome)
        await rebuild.checkpoint()
    total.seconds = time.perf_counter() - started
    return total
