"""Kafka wiring: a FastStream broker whose subscribers feed EventConsumers by hand-acked records."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from services.runtime.inbox import EventConsumer, Record
from services.runtime.kafka_security import KafkaSecurity

log = logging.getLogger(__name__)
# How long a batch subscriber waits for fetched records before handing over what it has. The
# broker answers each fetch as the consumer's fetch_min_bytes / fetch_wait_ms say (settings);
# records already fetched are handed over at once, so this only paces an idle consumer.
BATCH_WAIT_MS = 200


def build_broker(
    bootstrap_servers: str,
    *,
    client_id: str,
    middlewares: Any = (),
    security: KafkaSecurity | None = None,
) -> KafkaBroker:
    """A broker for subscribing; publishing goes through the outbox relay's own producer."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        middlewares=tuple(middlewares),
        enable_idempotence=True,
        acks="all",
        logger=log,
        security=security.broker_security() if security is not None else None,
    )


async def _raw_body(message: StreamMessage[Any]) -> Any:
    # The EventConsumer parses envelopes itself; FastStream must not decode (and fail on)
    # a poison payload before we can dead-letter it.
    return message.body


def _readable(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    """A copy FastStream can parse: it decodes every header as UTF-8 and fails otherwise."""
    headers = []
    for name, value in record.headers or ():
        try:
            value.decode()
        except (UnicodeDecodeError, AttributeError):
            continue
        headers.append((name, value))
    if len(headers) == len(record.headers or ()):
        return record
    return dataclasses.replace(record, headers=tuple(headers))


async def _parse_record(
    record: ConsumerRecord[Any, Any],
    original: Callable[[ConsumerRecord[Any, Any]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    # FastStream parses a readable copy (a header that is not UTF-8 would otherwise fail there,
    # unacked and never dead-lettered); the consumer gets the record exactly as it arrived.
    message = await original(_readable(record))
    message.raw_message = record
    return message


async def _parse_batch(
    records: tuple[ConsumerRecord[Any, Any], ...],
    original: Callable[[tuple[ConsumerRecord[Any, Any], ...]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    message = await original(tuple(_readable(record) for record in records))
    message.raw_message = records
    return message


def record_of(raw: ConsumerRecord[Any, Any]) -> Record:
    """The consumer's view of a delivered Kafka record (headers as raw bytes)."""
    return Record(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple(raw.headers or ()),
    )


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, OffsetAndMetadata]:
    """What to commit once `records` are applied: per partition, the offset after its last."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
    return {partition: OffsetAndMetadata(offset, "") for partition, offset in offsets.items()}


class OffsetCommits:
    """Commits each delivery's offsets while the next delivery is being applied.

    A commit is a round trip to the group coordinator (about a seventh of a batch's time when
    it was awaited before the next fetch). It is sent only after the delivery's transaction
    committed, names that delivery's offsets (not "everything fetched so far", which would
    cover records not applied yet), and waits for the one before it, so commits reach the
    broker in order. One that fails (a rebalance took the partition) leaves its records to be
    delivered again, which the inbox skips.
    """

    def __init__(self, group_id: str) -> None:
        self._group_id = group_id
        self._in_flight: asyncio.Task[None] | None = None

    async def commit(self, kafka_consumer: Any, records: Sequence[Record]) -> None:
        """Send the commit of `records` after the one before it; return without waiting."""
        await self.settle()
        offsets = next_offsets(records)
        if offsets:
            task = asyncio.create_task(kafka_consumer.commit(offsets))
            task.add_done_callback(self._log_failure)
            self._in_flight = task

    async def settle(self) -> None:
        """Wait for the commit in flight, if any (a failed one was logged, not raised)."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await asyncio.wait([task])

    def _log_failure(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.warning(
            "offset commit failed; its records will be delivered again and skipped",
            extra={"group": self._group_id, "error_type": type(task.exception()).__name__},
        )


def bind_consumer(broker: KafkaBroker, consumer: EventConsumer) -> None:
    """Subscribe `consumer` to its topics; offsets are committed only after it returns.

    With `consumer.batch_size` above 1 the subscriber takes up to that many records per fetch
    and the consumer applies them in one transaction; otherwise one record at a time.
    """
    topics = consumer.topics()
    if not topics:
        return
    batched = consumer.batch_size > 1
    commits = OffsetCommits(consumer.group_id)

    async def on_delivery(body: Any, message: KafkaMessage) -> None:
        raw = message.raw_message
        records = [record_of(record) for record in (raw if isinstance(raw, tuple) else (raw,))]
        try:
            if batched:
                await consumer.consume_batch(records)
            else:
                await consumer.consume(records[0])
        except Exception:
            # Only reachable when even a dead-letter write failed: rewind every partition of
            # the delivery so nothing is skipped by a later commit.
            await message.nack()
            raise
        # One commit per delivery (a whole batch at once), after its transaction; the next
        # delivery is fetched and applied while it travels.
        await commits.commit(message.consumer, records)

    options: dict[str, Any] = (
        {
            "batch": True,
            "max_records": consumer.batch_size,
            "batch_timeout_ms": BATCH_WAIT_MS,
            "fetch_min_bytes": consumer.fetch_min_bytes,
            "fetch_max_wait_ms": consumer.fetch_wait_ms,
            "parser": _parse_batch,
        }
        if batched
        else {"parser": _parse_record}
    )
    broker.subscriber(
        *topics,
        group_id=consumer.group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        decoder=_raw_body,
        title=f"{consumer.group_id}:{','.join(topics)}",
        **options,
    )(on_delivery)


class TransientCoordinatorErrors(logging.Filter):
    """Demotes aiokafka's "group coordinator not available" while the broker elects one.

    A fresh broker answers GroupCoordinatorNotAvailable for a second or two after start (it is
    creating `__consumer_offsets`); aiokafka retries and logs every attempt at ERROR. The first
    one of an episode is kept as a WARNING, the rest as DEBUG; if the coordinator is still
    missing `patience` seconds later it is a real problem, logged at ERROR once a period.
    """

    MARKER = "GroupCoordinatorNotAvailableError"

    def __init__(self, *, patience: float = 60.0) -> None:
        super().__init__()
        self._patience = patience
        self._first: float | None = None
        self._last = 0.0
        self._escalated: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every other record as it is."""
        if record.levelno < logging.ERROR or self.MARKER not in record.getMessage():
            return True
        now = record.created
        quiet_since, self._last = self._last, now
        if self._first is None or now - quiet_since > self._patience:
            # A new episode (start-up, or a broker restart long after the last one).
            self._first, self._escalated = now, None
            self._demote(record, logging.WARNING)
            record.msg = f"{record.getMessage()} (transient while the broker elects a coordinator)"
            record.args = ()
            return True
        if now - self._first >= self._patience and (
            self._escalated is None or now - self._escalated >= self._patience
        ):
            self._escalated = now
            return True
        self._demote(record, logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)

    @staticmethod
    def _demote(record: logging.LogRecord, level: int) -> None:
        record.levelno = level
        record.levelname = logging.getLevelName(level)


def quiet_transient_kafka_errors() -> None:
    """Install TransientCoordinatorErrors on aiokafka's coordinator logger (once)."""
    logger = logging.getLogger("aiokafka.consumer.group_coordinator")
    for old in [f for f in logger.filters if isinstance(f, TransientCoordinatorErrors)]:
        logger.removeFilter(old)
    logger.addFilter(TransientCoordinatorErrors())


class _RefusedConnections(logging.Filter):
    """aiokafka's "Unable connect to ..." at DEBUG: expected while the broker is not up."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.getMessage().startswith("Unable connect"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


@contextlib.contextmanager
def broker_not_expected_yet() -> Iterator[None]:
    """While a service waits for Kafka at start (and says so once per attempt at WARNING),
    aiokafka's own ERROR for each refused connection is noise; later ones stay ERRORs."""
    loggers = [logging.getLogger(name) for name in ("aiokafka", "aiokafka.conn")]
    refused = _RefusedConnections()
    for logger in loggers:
        logger.addFilter(refused)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(refused)
