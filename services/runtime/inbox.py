"""Idempotent event consumption: inbox row and effect in one transaction, then the offset."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.base import IntegrationEvent
from services.runtime.db import Database
from services.runtime.envelope import Envelope, EnvelopeError
from services.runtime.messaging_tables import InboxEntry
from services.runtime.outbox import EventProducer

log = logging.getLogger(__name__)

E = TypeVar("E", bound=IntegrationEvent)
Handler = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]


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


@dataclass
class _Route:
    event_class: type[IntegrationEvent]
    handler: Handler


@dataclass
class EventConsumer:
    """Applies events to a service's database exactly once per consumer, or dead-letters them."""

    service: str
    database: Database
    dead_letter_producer: EventProducer
    max_attempts: int = 3
    retry_backoff_seconds: float = 0.2
    metrics: ConsumerMetrics | None = None
    _routes: dict[str, _Route] = field(default_factory=dict)

    @property
    def consumer_name(self) -> str:
        """The inbox and consumer-group name of this service."""
        return f"xiezuo-{self.service}"

    @property
    def dead_letter_topic(self) -> str:
        """Where this service parks the records it cannot apply."""
        return f"xiezuo.{self.service}.dead-letter"

    def on(
        self, event_class: type[E], handler: Callable[[AsyncSession, E, Envelope], Awaitable[None]]
    ) -> None:
        """Route events of `event_class` to `handler` (which must not commit)."""
        self._routes[event_class.event_type] = _Route(event_class, handler)

    def topics(self) -> list[str]:
        """Every topic this consumer needs, derived from its routes."""
        return sorted({route.event_class.topic for route in self._routes.values()})

    async def consume(self, record: Record) -> Outcome:
        """Apply one record; returns only when it may be committed (applied, skipped or parked)."""
        started = time.perf_counter()
        try:
            envelope = Envelope.from_kafka(record.headers, record.value)
        except EnvelopeError as exc:
            return await self._dead_letter(record, None, "invalid-envelope", str(exc), 0, started)
        route = self._routes.get(envelope.type)
        if route is None:
            # Another event type on a shared topic (or a newer version this service does not
            # read yet) is not an error: skip it, and let its own consumers handle it.
            self._count(envelope, Outcome.IGNORED, started)
            return Outcome.IGNORED
        try:
            event = route.event_class.read(envelope.data)
        except ValidationError as exc:
            return await self._dead_letter(
                record, envelope, "invalid-payload", str(exc), 0, started
            )
        if event.county_id != envelope.county_id or event.zone_id != envelope.zone_id:
            return await self._dead_letter(
                record,
                envelope,
                "tenancy-mismatch",
                "ce_countyid/ce_zoneid differ from the payload",
                0,
                started,
            )
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self._apply(route, event, envelope)
            except PoisonEvent as exc:
                return await self._dead_letter(
                    record, envelope, "rejected", str(exc), attempt, started
                )
            except Exception as exc:
                if attempt >= self.max_attempts:
                    return await self._dead_letter(
                        record,
                        envelope,
                        "handler-failed",
                        f"{type(exc).__name__}: {exc}",
                        attempt,
                        started,
                    )
                log.warning(
                    "event handler failed, retrying",
                    extra={
                        "event_id": envelope.id,
                        "event_type": envelope.type,
                        "attempt": attempt,
                    },
                )
                await asyncio.sleep(self.retry_backoff_seconds * 2 ** (attempt - 1))
                continue
            self._count(envelope, outcome, started)
            return outcome

    async def _apply(self, route: _Route, event: IntegrationEvent, envelope: Envelope) -> Outcome:
        try:
            async with self.database.transaction() as session:
                seen = await session.get(InboxEntry, (self.consumer_name, envelope.id))
                if seen is not None:
                    return Outcome.DUPLICATE
                await route.handler(session, event, envelope)
                session.add(
                    InboxEntry(
                        consumer=self.consumer_name,
                        event_id=envelope.id,
                        event_type=envelope.type,
                        county_id=envelope.county_id,
                        processed_at=datetime.now(UTC),
                    )
                )
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
                "event_id": envelope.id if envelope else "",
            },
        )
        if envelope is not None:
            self._count(envelope, Outcome.DEAD_LETTERED, started)
        elif self.metrics:
            self.metrics.event_consumed("unknown", "", Outcome.DEAD_LETTERED.value)
        return Outcome.DEAD_LETTERED

    def _count(self, envelope: Envelope, outcome: Outcome, started: float) -> None:
        if self.metrics:
            self.metrics.event_consumed(envelope.type, envelope.zone_id, outcome.value)
            self.metrics.observe_handle(envelope.type, time.perf_counter() - started)
