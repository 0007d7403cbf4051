"""Idempotent event consumption: inbox row and effect in one transaction, then the offset."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import ValidationError
from sqlalchemy import Table, false, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.base import IntegrationEvent
from services.contracts.registry import EVENT_TYPES
from services.runtime import audit
from services.runtime.bulk import BulkInsert
from services.runtime.db import Database
from services.runtime.envelope import Envelope, EnvelopeError
from services.runtime.keyed_lookup import probe_each
from services.runtime.messaging_tables import InboxEntry
from services.runtime.outbox import EventProducer

log = logging.getLogger(__name__)
_INBOX_TABLE: Table = InboxEntry.__table__  # type: ignore[attr-defined]
_SEEN_PROBED = probe_each(
    [_INBOX_TABLE.c.event_id], [_INBOX_TABLE.c.consumer, _INBOX_TABLE.c.event_id]
)

E = TypeVar("E", bound=IntegrationEvent)
Handler = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]
# Applies a run of consecutive records of a batch at once (in order, in one savepoint): the
# per-record handler stays the way back when the run fails.
BatchHandler = Callable[[AsyncSession, Sequence[tuple[Any, Envelope]]], Awaitable[None]]


# Every `x-dead-letter-reason` this module writes (docs/operations.md lists what each means).
DEAD_LETTER_REASONS = (
    "invalid-envelope",
    "unknown-type",
    "invalid-payload",
    "tenancy-mismatch",
    "rejected",
    "handler-failed",
)


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never be applied; it is not retried."""


class Outcome(enum.StrEnum):
    """What became of one consumed record."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Record:
    """The parts of a Kafka record a consumer looks at."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class ConsumerMetrics(Protocol):
    """Counters the consumer reports to (ServiceMetrics satisfies it)."""

    def event_consumed(self, event_type: str, zone: str, outcome: Any) -> None: ...

    def observe_handle(self, event_type: str, seconds: float) -> None: ...

    def dead_letter_written(self, topic: str, reason: str) -> None: ...


class RecordLedger(Protocol):
    """What a route remembers of each record it applied, to tell a redelivery from a replay.

    At-least-once delivery (a retried produce, a mirror restarting) brings the same record
    again: acknowledged, nothing changes. Another record reusing an applied id is a replay.
    """

    async def remember(self, session: AsyncSession, envelope: Envelope) -> None:
        """Note the applied record, in the transaction that applies it."""
        ...

    async def is_redelivery(self, session: AsyncSession, envelope: Envelope) -> bool:
        """Whether `envelope` is, byte for byte, the record applied under its id."""
        ...


@dataclass
class _Route:
    event_class: type[IntegrationEvent]
    handler: Handler
    # Records from outside the deployment (another county's signed letters): an id seen before
    # is a replay to park for an operator, not a redelivery to skip quietly...
    replay_is_poison: bool = False
    # ...unless the ledger knows it for the very record applied (an at-least-once redelivery).
    ledger: RecordLedger | None = None
    # Routes sharing one batch handler have their consecutive records of a batch applied by
    # it in one call; when that fails, each goes to `handler` in its own savepoint.
    batch_handler: BatchHandler | None = None

    async def replayed(self, session: AsyncSession, envelope: Envelope) -> bool:
        """Whether an already-applied id is a replay (dead letter), not a duplicate (skip)."""
        if not self.replay_is_poison:
            return False
        return self.ledger is None or not await self.ledger.is_redelivery(session, envelope)

    async def applied(self, session: AsyncSession, envelope: Envelope) -> None:
        """Remember the record just applied, if this route tells redeliveries from replays."""
        if self.ledger is not None:
            await self.ledger.remember(session, envelope)


@dataclass
class EventConsumer:
    """Applies events to a service's database exactly once per consumer, or dead-letters them."""

    service: str
    database: Database
    dead_letter_producer: EventProducer
    max_attempts: int = 3
    retry_backoff_seconds: float = 0.2
    metrics: ConsumerMetrics | None = None
    # Records applied per transaction (1: one at a time); the host sets it from settings.
    batch_size: int = 1
    # A batched subscriber's fetch: answered once this many bytes wait or after this long
    # (Kafka's own defaults here; the host sets the platform's).
    fetch_min_bytes: int = 1
    fetch_wait_ms: int = 500
    # The consumer group is `<group_prefix>-<service>`: a second deployment on the same broker
    # (another county) needs its own prefix, or it would share partitions with the first. The
    # inbox keeps `consumer_name`, so changing the prefix replays the log into an intact inbox.
    group_prefix: str = "xiezuo"
    # The counties this deployment serves; empty: every county. On a broker shared by two
    # deployments (two counties in dev) each sees the other's events and must leave them be.
    counties: frozenset[str] = frozenset()
    # Types some contract declares: not routed here means "someone else's", not "unknown".
    known_types: frozenset[str] = field(default_factory=lambda: frozenset(EVENT_TYPES))
    # Batches get one consumer span per record, continued from its traceparent (FastStream's
    # middleware traces a batch as one span, which would cut every event's trace there).
    tracer_provider: TracerProvider | None = None
    _routes: dict[str, _Route] = field(default_factory=dict)
    _newer_seen: set[str] = field(default_factory=set)
    _trace_context: TraceContextTextMapPropagator = field(
        default_factory=TraceContextTextMapPropagator
    )
    # A batch's inbox rows, bound by the driver: one INSERT compiled once, run over every row.
    _inbox_insert: BulkInsert = field(default_factory=lambda: BulkInsert(_INBOX_TABLE))

    @property
    def consumer_name(self) -> str:
        """The inbox and consumer-group name of this service."""
        return f"xiezuo-{self.service}"

    @property
    def group_id(self) -> str:
        """This service's Kafka consumer group in this deployment."""
        return f"{self.group_prefix}-{self.service}"

    @property
    def dead_letter_topic(self) -> str:
        """Where this service parks the records it cannot apply."""
        return f"xiezuo.{self.service}.dead-letter"

    def on(
        self,
        event_class: type[E],
        handler: Callable[[AsyncSession, E, Envelope], Awaitable[None]],
        *,
        replay_is_poison: bool = False,
        ledger: RecordLedger | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Route events of `event_class` to `handler` (which must not commit).

        With `replay_is_poison`, a record whose id was already applied is dead-lettered as
        "rejected" (replayed) instead of being skipped; it still changes nothing. With a
        `ledger` too, the same record delivered again is skipped as a duplicate.
        `batch_handler` must have the effect of `handler` on each record, in order: in a batch,
        a run of consecutive records whose routes share it goes to it at once.
        """
        if batch_handler is not None and (replay_is_poison or ledger is not None):
            raise ValueError("a batch handler cannot tell replays from redeliveries")
        self._routes[event_class.event_type] = _Route(
            event_class, handler, replay_is_poison, ledger, batch_handler
        )

    def topics(self) -> list[str]:
        """Every topic this consumer needs, derived from its routes."""
        return sorted({route.event_class.topic for route in self._routes.values()})

    async def consume(self, record: Record) -> Outcome:
        """Apply one record; returns only when it may be committed (applied, skipped or parked)."""
        read = await self._read(record, time.perf_counter())
        if isinstance(read, Outcome):
            return read
        return await self._apply_alone(read, attempts=0)

    async def consume_batch(self, records: Sequence[Record]) -> list[Outcome]:
        """Apply records in one transaction; returns when all of them may be committed.

        Each record runs in a savepoint: one that fails is undone alone, retried alone after
        the batch commits and dead-lettered if it keeps failing, while the others are kept.
        Records with the same key as a failed one wait for it, so each key keeps its order;
        failed records of different keys are retried side by side.
        """
        started = time.perf_counter()
        outcomes: dict[int, Outcome] = {}
        pending: list[tuple[int, _Readable]] = []
        for index, record in enumerate(records):
            read = await self._read(record, started)
            if isinstance(read, Outcome):
                outcomes[index] = read
            else:
                pending.append((index, read))
        while pending:
            try:
                applied, failed, deferred = await self._apply_batch(pending)
            except Exception as exc:
                # The batch itself could not commit (nothing of it is kept): each record
                # goes alone, in order, with the usual retries.
                log.warning(
                    "event batch failed, applying its records one by one",
                    extra={"records": len(pending), "error_type": type(exc).__name__},
                )
                for index, item in pending:
                    outcomes[index] = await self._apply_alone(item, attempts=0)
                break
            for index, (item, outcome) in applied.items():
                self._count(item.envelope.type, item.envelope.zone_id, outcome, item.started)
                outcomes[index] = outcome
            retries: list[tuple[int, _Readable]] = []
            for index, item, error in failed:
                if isinstance(error, PoisonEvent):
                    outcomes[index] = await self._dead_letter(
                        item.record, item.envelope, "rejected", str(error), 1, item.started
                    )
                elif self.max_attempts <= 1:
                    outcomes[index] = await self._dead_letter(
                        item.record,
                        item.envelope,
                        "handler-failed",
                        f"{type(error).__name__}: {error}",
                        1,
                        item.started,
                    )
                else:
                    self._log_retry(item.envelope, 1)
                    retries.append((index, item))
            # A key fails at most once a round (its later records wait), so the retries have
            # no order among them: backing off side by side, a delivery with several failing
            # records waits for the slowest, not for the sum of them.
            retried = await asyncio.gather(
                *(self._apply_alone(item, attempts=1) for _, item in retries),
                return_exceptions=True,
            )
            for (index, _), result in zip(retries, retried, strict=True):
                if isinstance(result, BaseException):
                    # Only a dead letter that could not be written; the others have settled.
                    raise result
                outcomes[index] = result
            pending = deferred
        return [outcomes[index] for index in range(len(records))]

    async def _read(self, record: Record, started: float) -> _Readable | Outcome:
        """The record's route and event, or the outcome of a record that cannot be read."""
        read = read_record(
            record.headers,
            record.value,
            self._routes,
            counties=self.counties,
            known_types=self.known_types,
        )
        if isinstance(read, RecordRead):
            return _Readable(record, read.envelope, read.route, read.event, started)
        if read.reason == IGNORED:
            self._count(read.label, "", Outcome.IGNORED, started)
            return Outcome.IGNORED
        if read.reason == NEWER_VERSION:
            # Logged at most once per process per type, counted under the bounded label.
            assert read.envelope is not None
            self._note_newer_version(read.envelope.type)
            self._count("unknown", "", Outcome.IGNORED, started)
            return Outcome.IGNORED
        return await self._dead_letter(record, read.envelope, read.reason, read.detail, 0, started)

    async def _apply_alone(self, item: _Readable, *, attempts: int) -> Outcome:
        """Apply one readable record in its own transaction, retrying with back-off."""
        attempt = attempts
        while True:
            if attempt:
                await asyncio.sleep(self.retry_backoff_seconds * 2 ** (attempt - 1))
            attempt += 1
            try:
                with self._record_span(item):
                    outcome = await self._apply(item.route, item.event, item.envelope)
            except PoisonEvent as exc:
                return await self._dead_letter(
                    item.record, item.envelope, "rejected", str(exc), attempt, item.started
                )
            except Exception as exc:
                if attempt >= self.max_attempts:
                    return await self._dead_letter(
                        item.record,
                        item.envelope,
                        "handler-failed",
                        f"{type(exc).__name__}: {exc}",
                        attempt,
                        item.started,
                    )
                self._log_retry(item.envelope, attempt)
                continue
            self._count(item.envelope.type, item.envelope.zone_id, outcome, item.started)
            return outcome

    def _log_retry(self, envelope: Envelope, attempt: int) -> None:
        log.warning(
            "event handler failed, retrying",
            extra={"event_id": envelope.id, "event_type": envelope.type, "attempt": attempt},
        )

    async def _seen(self, session: AsyncSession, ids: list[str]) -> set[str]:
        """Which of `ids` (sorted, distinct) this consumer's inbox already holds."""
        if self.database.is_sqlite:
            query = select(InboxEntry.event_id).where(
                col(InboxEntry.consumer) == self.consumer_name,
                col(InboxEntry.event_id).in_(ids),
            )
            return set((await session.exec(query)).all())
        # PostgreSQL: a probe of the primary key per id, whatever the inbox held when the
        # statement's plan was made (keyed_lookup); the IN list over a batch's ids took
        # 6 ms a batch in assessment at 350 reports/s (bench/README.md, session 21).
        connection = await session.connection()
        found = await connection.execute(
            _SEEN_PROBED, {"consumers": [self.consumer_name] * len(ids), "event_ids": ids}
        )
        return {row.event_id for row in found}

    async def _apply_batch(
        self, pending: Sequence[tuple[int, _Readable]]
    ) -> tuple[
        dict[int, tuple[_Readable, Outcome]],
        list[tuple[int, _Readable, Exception]],
        list[tuple[int, _Readable]],
    ]:
        """One transaction over `pending`: what it applied, what failed, what must wait."""
        applied: dict[int, tuple[_Readable, Outcome]] = {}
        failed: list[tuple[int, _Readable, Exception]] = []
        deferred: list[tuple[int, _Readable]] = []
        waiting_keys: set[bytes | None] = set()
        async with self.database.transaction() as session:
            if self.database.is_sqlite:
                # The sqlite3 driver opens its transaction at the first write, not at a
                # SAVEPOINT; without a write first, releasing the first savepoint would
                # commit it on its own and the batch would not be one transaction.
                await session.exec(
                    update(InboxEntry).where(false()).values(consumer=col(InboxEntry.consumer))
                )
            seen = await self._seen(session, sorted({item.envelope.id for _, item in pending}))
            # The handlers' audit entries are chained in memory and written together when
            # the loop ends: one head lock per county per batch instead of three statements
            # per entry.
            async with audit.deferred_appends(session) as audited:

                async def one(index: int, item: _Readable) -> None:
                    key = item.record.key
                    if key in waiting_keys:
                        deferred.append((index, item))
                        return
                    if item.envelope.id in seen:
                        if await item.route.replayed(session, item.envelope):
                            failed.append((index, item, _replayed(item.envelope)))
                        else:
                            applied[index] = (item, Outcome.DUPLICATE)
                        return
                    before = audited.mark()
                    try:
                        with self._record_span(item):
                            async with session.begin_nested():
                                await item.route.handler(session, item.event, item.envelope)
                                await item.route.applied(session, item.envelope)
                    except Exception as exc:
                        # Its savepoint is undone, and with it its audit entries and locks.
                        audited.rewind(before)
                        failed.append((index, item, exc))
                        if not isinstance(exc, PoisonEvent):
                            # Later records of this key must not overtake the failed one.
                            waiting_keys.add(key)
                        return
                    seen.add(item.envelope.id)
                    applied[index] = (item, Outcome.PROCESSED)

                async def flush(run: list[tuple[int, _Readable]]) -> None:
                    batch_handler = run[0][1].route.batch_handler
                    if batch_handler is None or len(run) == 1:
                        for index, item in run:
                            await one(index, item)
                        return
                    before = audited.mark()
                    try:
                        with self._run_spans([item for _, item in run]):
                            async with session.begin_nested():
                                await batch_handler(
                                    session, [(item.event, item.envelope) for _, item in run]
                                )
                    except Exception:
                        # Undone as a whole: each record again, alone in its savepoint, so
                        # only the one that fails is retried or parked.
                        audited.rewind(before)
                        for index, item in run:
                            await one(index, item)
                        return
                    for index, item in run:
                        seen.add(item.envelope.id)
                        applied[index] = (item, Outcome.PROCESSED)

                # Consecutive new records of routes sharing a batch handler form a run; a
                # record of another route, or an id already in the run, closes it first.
                run: list[tuple[int, _Readable]] = []
                run_ids: set[str] = set()
                for index, item in pending:
                    batch_handler = item.route.batch_handler
                    # `!=`, not `is not`: a bound method is a new object at every access.
                    if run and (
                        batch_handler != run[0][1].route.batch_handler
                        or item.envelope.id in run_ids
                    ):
                        await flush(run)
                        run, run_ids = [], set()
                    if (
                        batch_handler is not None
                        and item.record.key not in waiting_keys
                        and item.envelope.id not in seen
                    ):
                        run.append((index, item))
                        run_ids.add(item.envelope.id)
                    else:
                        await one(index, item)
                if run:
                    await flush(run)
            # The inbox rows of every applied record, written together in the same transaction
            # (a statement per row was a third of a batch's statements). A concurrent delivery
            # that committed one of these ids first fails this insert and so the whole batch,
            # which then goes record by record and finds it applied.
            processed = [
                item.envelope for item, outcome in applied.values() if outcome is Outcome.PROCESSED
            ]
            if processed:
                # One INSERT prepared once and run over every row by the driver (executemany):
                # a VALUES list of the batch's rows would be built and compiled again for each
                # batch, and SQLAlchemy's own executemany rebuilt every row's parameters.
                now = datetime.now(UTC)
                await self._inbox_insert.rows(
                    await session.connection(),
                    [self.inbox_row(envelope, now) for envelope in processed],
                )
        return applied, failed, deferred

    def _inbox_entry(self, envelope: Envelope) -> InboxEntry:
        return InboxEntry(**self.inbox_row(envelope, datetime.now(UTC)))

    def inbox_row(self, envelope: Envelope, processed_at: datetime) -> dict[str, Any]:
        """The inbox row that marks `envelope` applied by this consumer (batch writers' too)."""
        return {
            "consumer": self.consumer_name,
            "event_id": envelope.id,
            "event_type": envelope.type,
            "county_id": envelope.county_id,
            "processed_at": processed_at,
        }

    async def _apply(self, route: _Route, event: IntegrationEvent, envelope: Envelope) -> Outcome:
        try:
            async with self.database.transaction() as session:
                seen = await session.get(InboxEntry, (self.consumer_name, envelope.id))
                if seen is not None:
                    if await route.replayed(session, envelope):
                        raise _replayed(envelope)
                    return Outcome.DUPLICATE
                await route.handler(session, event, envelope)
                await route.applied(session, envelope)
                session.add(self._inbox_entry(envelope))
        except IntegrityError:
            # A concurrent delivery (e.g. during a rebalance) committed the same event first;
            # our transaction rolled back, so the effect exists exactly once.
            async with self.database.transaction() as session:
                if await session.get(InboxEntry, (self.consumer_name, envelope.id)) is not None:
                    return Outcome.DUPLICATE
            raise
        return Outcome.PROCESSED

    async def _dead_letter(
        self,
        record: Record,
        envelope: Envelope | None,
        reason: str,
        error: str,
        attempts: int,
        started: float,
    ) -> Outcome:
        headers = list(record.headers) + [
            ("x-dead-letter-reason", reason.encode()),
            ("x-dead-letter-error", error[:2000].encode(errors="replace")),
            ("x-dead-letter-consumer", self.consumer_name.encode()),
            # The consumer name is the same in every deployment; the group says which one
            # (which county's) parked it when deployments share a dead-letter topic.
            ("x-dead-letter-group", self.group_id.encode()),
            ("x-dead-letter-attempts", str(attempts).encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-dead-letter-at", datetime.now(UTC).isoformat().encode()),
        ]
        future = await self.dead_letter_producer.send(
            self.dead_letter_topic, record.value or b"", record.key or b"", headers
        )
        # If the dead-letter write fails this raises, the offset is not committed, and the
        # record comes back: a poison event is parked, never dropped.
        await future
        log.error(
            "event dead-lettered",
            extra={
                "reason": reason,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "event_id": envelope.id[:100] if envelope else "",
            },
        )
        known = envelope is not None and (
            envelope.type in self._routes or envelope.type in self.known_types
        )
        label = envelope.type if envelope is not None and known else "unknown"
        self._count(label, "", Outcome.DEAD_LETTERED, started)
        if self.metrics:
            # Bounded labels: a topic this consumer subscribes to, a reason from this module.
            self.metrics.dead_letter_written(record.topic, reason)
        return Outcome.DEAD_LETTERED

    @contextlib.contextmanager
    def _record_span(self, item: _Readable) -> Iterator[None]:
        """A consumer span for one record of a batch, child of the span that published it."""
        if self.batch_size <= 1 or self.tracer_provider is None:
            yield  # one record at a time: FastStream's middleware opened this span already
            return
        tracer = self.tracer_provider.get_tracer("xiezuo.consumer")
        with tracer.start_as_current_span(
            f"{item.record.topic} process",
            context=propagate.extract(_trace_carrier(item.envelope)),
            kind=SpanKind.CONSUMER,
            attributes=self._span_attributes(item),
        ):
            yield

    @contextlib.contextmanager
    def _run_spans(self, items: Sequence[_Readable]) -> Iterator[None]:
        """A consumer span per record of a run applied at once, each under its publisher's.

        Started and ended around the run; only the first is made current, so the run's
        statements (one for many records) are traced under it. Making each of a hundred spans
        current in turn, nested, cost a sixth of a batch's time.
        """
        if self.batch_size <= 1 or self.tracer_provider is None:
            yield
            return
        tracer = self.tracer_provider.get_tracer("xiezuo.consumer")
        # One clock reading for the run (its records start together), and each parent read by
        # the W3C trace-context propagator alone: the carrier holds nothing else (no baggage),
        # and the global composite's extra pass cost more than the parse itself.
        started = time.time_ns()
        spans = [
            tracer.start_span(
                f"{item.record.topic} process",
                context=self._trace_context.extract(_trace_carrier(item.envelope)),
                kind=SpanKind.CONSUMER,
                attributes=self._span_attributes(item),
                start_time=started,
            )
            for item in items
        ]
        try:
            with trace.use_span(
                spans[0], end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield
        except Exception as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for span in spans:
                span.end()

    def _span_attributes(self, item: _Readable) -> dict[str, Any]:
        return {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": item.record.topic,
            "messaging.destination.partition.id": str(item.record.partition),
            "messaging.kafka.offset": item.record.offset,
            "messaging.message.id": item.envelope.id[:100],
            "messaging.consumer.group.name": self.consumer_name,
        }

    def _note_newer_version(self, event_type: str) -> None:
        if event_type in self._newer_seen or len(self._newer_seen) >= 100:
            return
        self._newer_seen.add(event_type)
        log.info(
            "skipping a newer version of a known event type",
            extra={"event_type": event_type[:200], "consumer": self.consumer_name},
        )

    def _count(self, event_type: str, zone: str, outcome: Outcome, started: float) -> None:
        # Callers pass only bounded labels: a contract's type (or "unknown") and a zone that
        # a valid event carried (or "").
        if self.metrics:
            self.metrics.event_consumed(event_type, zone, outcome.value)
            self.metrics.observe_handle(event_type, time.perf_counter() - started)


def _trace_carrier(envelope: Envelope) -> dict[str, str]:
    """The event's W3C trace headers, for continuing its publisher's trace.

    Taken from the envelope, which has read every header already.
    """
    carrier: dict[str, str] = {}
    if envelope.traceparent:
        carrier["traceparent"] = envelope.traceparent
    if envelope.tracestate:
        carrier["tracestate"] = envelope.tracestate
    return carrier


def _replayed(envelope: Envelope) -> PoisonEvent:
    return PoisonEvent(f"replayed: event id {envelope.id[:100]!r} was already applied")


_VERSIONED = re.compile(r"^(?P<stem>[a-z0-9_.-]+)\.v(?P<version>[1-9][0-9]{0,3})$")


def _newer_version_of(event_type: str, known_types: frozenset[str]) -> bool:
    """Whether `event_type` is `<stem>.vN` for a stem some contract declares at a lower N."""
    found = _VERSIONED.match(event_type)
    if found is None:
        return False
    stem, version = found["stem"], int(found["version"])
    return any(f"{stem}.v{lower}" in known_types for lower in range(1, version))


# `Unread.reason` of a record that is not an error here; every other reason is a dead letter's.
IGNORED = "ignored"
NEWER_VERSION = "newer-version"


class Routed(Protocol):
    """A route, as far as reading a record goes: the event class it reads."""

    @property
    def event_class(self) -> type[IntegrationEvent]: ...


R = TypeVar("R", bound=Routed)


@dataclass(frozen=True)
class RecordRead(Generic[R]):
    """A record that reads: its envelope, the route that takes it and its event."""

    envelope: Envelope
    route: R
    event: IntegrationEvent


@dataclass(frozen=True)
class Unread:
    """Why a record is not applied: `IGNORED`, `NEWER_VERSION` or a dead-letter reason."""

    reason: str
    detail: str = ""
    envelope: Envelope | None = None
    # The bounded metrics label of an ignored record: a contract's type, or "unknown".
    label: str = "unknown"


def read_record(
    headers: Sequence[tuple[str, bytes]],
    value: bytes | None,
    routes: Mapping[str, R],
    *,
    counties: frozenset[str],
    known_types: frozenset[str],
) -> RecordRead[R] | Unread:
    """Route one Kafka record the way every consumer of this deployment does.

    The one place that decides, without side effects, whether a record is this deployment's
    (served county), routed here (or another contract's, or a newer version, or unknown) and
    readable (payload and tenancy); `EventConsumer` and the projection rebuild both use it.
    """
    try:
        envelope = Envelope.from_kafka(headers, value)
    except EnvelopeError as exc:
        return Unread("invalid-envelope", str(exc))
    if counties and envelope.county_id not in counties and envelope.county_id != "*":
        # Another deployment's county: its own consumers apply it, not an error here.
        label = envelope.type if envelope.type in known_types else "unknown"
        return Unread(IGNORED, envelope=envelope, label=label)
    route = routes.get(envelope.type)
    if route is None:
        if envelope.type in known_types:
            # Another contract's event on a shared topic is not an error: its own consumers
            # handle it. Its type is a contract's, so the label stays bounded.
            return Unread(IGNORED, envelope=envelope, label=envelope.type)
        if _newer_version_of(envelope.type, known_types):
            # A `.vN+1` of a declared type is published beside `.vN` until consumers move
            # (the versioning rule): this build reads `.vN`, so the new one is skipped.
            return Unread(NEWER_VERSION, envelope=envelope)
        # A type no contract declares (a typo, a forgery, or a brand-new event deployed
        # before its consumers): parked for an operator, counted under one label.
        return Unread(
            "unknown-type", f"no contract declares event type {envelope.type[:200]!r}", envelope
        )
    try:
        event = route.event_class.read(envelope.data)
    except (ValidationError, ValueError) as exc:
        return Unread("invalid-payload", str(exc), envelope)
    if event.county_id != envelope.county_id or event.zone_id != envelope.zone_id:
        return Unread("tenancy-mismatch", "ce_countyid/ce_zoneid differ from the payload", envelope)
    return RecordRead(envelope, route, event)


@dataclass(frozen=True)
class _Readable:
    """A record that parsed: its route, event and envelope."""

    record: Record
    envelope: Envelope
    route: _Route
    event: IntegrationEvent
    started: float
