"""Transactional outbox: events are rows committed with the change; a relay publishes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import propagate, trace
from sqlalchemy import Table, bindparam, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.base import IntegrationEvent
from services.runtime.db import OUTBOX_WRITTEN, Database, as_utc
from services.runtime.envelope import Envelope
from services.runtime.ids import time_ordered_uuid
from services.runtime.kafka_security import KafkaSecurity, client_kwargs
from services.runtime.messaging_tables import OutboxMessage

log = logging.getLogger(__name__)


def record_event(
    session: AsyncSession,
    event: IntegrationEvent,
    *,
    source: str,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> OutboxMessage:
    """Add `event` to the outbox inside the caller's transaction (never commits)."""
    row = outbox_row(event, source=source, occurred_at=occurred_at, event_id=event_id)
    session.add(row)
    session.info[OUTBOX_WRITTEN] = True
    return row


def outbox_row(
    event: IntegrationEvent,
    *,
    source: str,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
) -> OutboxMessage:
    """The outbox row of `event`, not added to any session (for a caller's bulk insert)."""
    carrier: dict[str, str] = {}
    # The trace context of the request that caused the event travels with the row, so the
    # consumer's span joins the same trace even if the relay publishes much later.
    propagate.inject(carrier)
    row = OutboxMessage(
        event_id=event_id or str(time_ordered_uuid()),
        event_type=event.event_type,
        topic=event.topic,
        partition_key=event.partition_key(),
        source=source,
        subject=event.subject_id(),
        county_id=event.county_id,
        zone_id=event.zone_id,
        occurred_at=occurred_at or datetime.now(UTC),
        payload=event.model_dump_json(),
        traceparent=carrier.get("traceparent"),
        tracestate=carrier.get("tracestate"),
        recorded_at=datetime.now(UTC),
    )
    return row


def envelope_of(row: OutboxMessage) -> Envelope:
    """The CloudEvent an outbox row (a table model, or a row of its columns) becomes on Kafka."""
    return Envelope(
        id=row.event_id,
        type=row.event_type,
        source=row.source,
        time=row.occurred_at,
        county_id=row.county_id,
        zone_id=row.zone_id,
        data=row.payload.encode(),
        subject=row.subject,
        traceparent=row.traceparent,
        tracestate=row.tracestate,
    )


async def oldest_unpublished_age(database: Database, *, now: datetime) -> float:
    """Seconds the oldest unpublished row has waited for the relay (0 when none waits)."""
    async with database.session() as session:
        # The unpublished index (published_at, id) answers this with one row.
        found = (
            await session.exec(
                select(OutboxMessage.recorded_at, OutboxMessage.occurred_at)
                .where(col(OutboxMessage.published_at).is_(None))
                .order_by(col(OutboxMessage.id))
                .limit(1)
            )
        ).first()
    if found is None:
        return 0.0
    recorded_at, occurred_at = found
    # Rows written before recorded_at existed fall back to their event time.
    return max(0.0, (now - as_utc(recorded_at or occurred_at)).total_seconds())


class EventProducer(Protocol):
    """What the relay needs from a Kafka producer."""

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]: ...


class RelayMetrics(Protocol):
    """Counters the relay reports to (ServiceMetrics satisfies it)."""

    def outbox_event_published(self, event_type: str, zone: str) -> None: ...

    def observe_publish(self, seconds: float) -> None: ...

    def set_outbox_pending(self, count: int) -> None: ...


class OutboxRelay:
    """Publishes unpublished outbox rows in id order and marks them published."""

    def __init__(
        self,
        database: Database,
        producer: EventProducer,
        *,
        batch_size: int = 500,
        idle_poll_seconds: float = 2.0,
        metrics: RelayMetrics | None = None,
        claim_timeout_seconds: float = 120.0,
    ) -> None:
        self._db = database
        # PostgreSQL: how long a pass may hold its claimed rows without a word to the database.
        # Another replica's relay waits on those rows; if this process is frozen or its node is
        # cut off (no FIN ever reaches the server), PostgreSQL ends the session after this long
        # and the waiting relay takes over instead of waiting for TCP keepalive (hours).
        self._claim_timeout_ms = max(1, int(claim_timeout_seconds * 1000))
        self._producer = producer
        self._batch_size = batch_size
        # Built once, like the marking statements below: a pass runs for every few commits,
        # and building its statements cost more than SQLite took to run them (session 20).
        self._pending = (
            select(*_PENDING_COLUMNS)
            .where(_OUTBOX.c.published_at.is_(None))
            .order_by(_OUTBOX.c.id)
            .limit(batch_size)
        )
        self._pending_claimed = self._pending.with_for_update()
        self._idle_poll = idle_poll_seconds
        self._metrics = metrics
        self._tracer = trace.get_tracer("xiezuo.outbox")
        self._wake = asyncio.Event()
        # One pass at a time: stop()'s final pass must not resend what run()'s pass is sending.
        self._pass_lock = asyncio.Lock()
        self._stopping = False
        database.on_outbox_commit(self.wake)

    @property
    def claim_timeout_seconds(self) -> float:
        """How long a pass may hold its claimed rows idle (PostgreSQL) before losing them."""
        return self._claim_timeout_ms / 1000

    def wake(self) -> None:
        """Publish now: called after a commit that wrote outbox rows."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped; rows left by a crash are published on the first pass."""
        failures = 0
        while not self._stopping:
            try:
                published = await self.publish_pending()
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox relay pass failed", extra={"attempt": failures})
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))
                continue
            if published < self._batch_size:
                await self._idle()

    async def stop(self) -> None:
        """Finish the current pass and one more, so nothing committed is left behind."""
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await self.publish_pending()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._idle_poll)
        self._wake.clear()

    async def publish_pending(self) -> int:
        """One pass: publish up to a batch of rows; returns how many were published."""
        async with self._pass_lock:
            return await self._pass()

    async def _pass(self) -> int:
        async with self._db.session() as session:
            async with session.begin():
                connection = await session.connection()
                query = self._pending
                if not self._db.is_sqlite:
                    # A second relay on the same database waits here instead of publishing
                    # the same rows out of order; it then sees them published and skips them.
                    query = self._pending_claimed
                    await connection.execute(
                        text(
                            "SET LOCAL idle_in_transaction_session_timeout = "
                            f"{self._claim_timeout_ms}"
                        )
                    )
                pending = [_Pending.of(row) for row in await connection.execute(query)]
                if self._metrics:
                    self._metrics.set_outbox_pending(len(pending))
                if not pending:
                    return 0
                if not self._db.is_sqlite:
                    sent = await self._send(pending)
                    await self._mark(session, pending, sent)
                    return len(sent)
            # SQLite cannot upgrade a read snapshot to a write after another writer committed,
            # so it publishes outside the read and marks in a fresh transaction.
            sent = await self._send(pending)
            async with session.begin():
                await self._mark(session, pending, sent)
            return len(sent)

    async def _send(self, rows: Sequence[_Pending]) -> list[_Pending]:
        started = time.perf_counter()
        futures: list[tuple[_Pending, asyncio.Future[Any]]] = []
        for row in rows:
            envelope = row.envelope
            parent = propagate.extract({"traceparent": envelope.traceparent or ""})
            # A producer span, child of the request that wrote the row; the consumer's span
            # becomes its child through the traceparent header it injects.
            with self._tracer.start_as_current_span(
                f"{row.topic} publish", context=parent, kind=trace.SpanKind.PRODUCER
            ) as span:
                span.set_attribute("messaging.system", "kafka")
                span.set_attribute("messaging.destination.name", row.topic)
                span.set_attribute("messaging.message.id", envelope.id)
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                headers = [
                    (name, value)
                    for name, value in envelope.headers()
                    if name not in ("traceparent", "tracestate")
                ]
                headers += [(name, value.encode()) for name, value in carrier.items()]
                future = await self._producer.send(
                    row.topic, envelope.data, row.partition_key.encode(), headers
                )
            futures.append((row, future))
        sent: list[_Pending] = []
        for row, future in futures:
            try:
                await future
            except Exception:
                # Later rows may still have gone out; they will be marked, and this one retried.
                # Consumers deduplicate by event id, so a resend is harmless.
                log.exception("publish failed", extra={"event_id": row.envelope.id})
                continue
            sent.append(row)
        if self._metrics:
            self._metrics.observe_publish(time.perf_counter() - started)
            for row in sent:
                self._metrics.outbox_event_published(row.envelope.type, row.envelope.zone_id)
        return sent

    async def _mark(
        self, session: AsyncSession, pending: Sequence[_Pending], sent: Sequence[_Pending]
    ) -> None:
        sent_ids = {row.id for row in sent}
        failed_ids = [row.id for row in pending if row.id not in sent_ids]
        connection = await session.connection()
        if sent_ids:
            await connection.execute(_PUBLISHED, {"ids": sorted(sent_ids), "at": datetime.now(UTC)})
        if failed_ids:
            # Counted so an operator can spot a row that keeps failing (xiezuo_outbox_pending).
            await connection.execute(_NOT_PUBLISHED, {"ids": failed_ids})


@dataclass(frozen=True)
class _Pending:
    """A row's content copied out of the session, so publishing never touches the ORM."""

    id: int
    topic: str
    partition_key: str
    envelope: Envelope

    @classmethod
    def of(cls, row: Any) -> _Pending:
        """From a row of `_PENDING_COLUMNS` (an outbox row's columns but the bookkeeping)."""
        return cls(row.id, row.topic, row.partition_key, envelope_of(row))


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_PENDING_COLUMNS = [
    _OUTBOX.c[name]
    for name in (
        "id",
        "event_id",
        "event_type",
        "topic",
        "partition_key",
        "source",
        "subject",
        "county_id",
        "zone_id",
        "occurred_at",
        "payload",
        "traceparent",
        "tracestate",
    )
]
_NOT_PUBLISHED = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(publish_attempts=_OUTBOX.c.publish_attempts + 1)
)
_PUBLISHED = _NOT_PUBLISHED.values(published_at=bindparam("at"))


class KafkaEventProducer:
    """An idempotent aiokafka producer (acks=all) shaped for the relay."""

    def __init__(
        self, bootstrap_servers: str, *, client_id: str, security: KafkaSecurity | None = None
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._security = security
        self._producer = self._new_producer()

    def _new_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            # Built anew after a failed start: a rotated password file counts from here on.
            **client_kwargs(self._security),
        )

    async def start(self) -> None:
        """Connect to the cluster; after a failure, the next call tries with a fresh client."""
        try:
            await self._producer.start()
        except BaseException:
            # An aiokafka producer whose start failed cannot be started again.
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = self._new_producer()
            raise

    async def stop(self) -> None:
        """Flush and disconnect."""
        await self._producer.stop()

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        """Queue one record; the future resolves when the broker has it (acks=all)."""
        return await self._producer.send(topic, value=value, key=key, headers=headers)
