"""Kafka wiring: a FastStream broker whose subscribers feed EventConsumers by hand-acked records."""

from __future__ import annotations

import logging
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from services.runtime.inbox import EventConsumer, Record

log = logging.getLogger(__name__)


def build_broker(bootstrap_servers: str, *, client_id: str, middlewares: Any = ()) -> KafkaBroker:
    """A broker for subscribing; publishing goes through the outbox relay's own producer."""
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        middlewares=tuple(middlewares),
        enable_idempotence=True,
        acks="all",
        logger=log,
    )


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    # The EventConsumer parses envelopes itself; FastStream must not decode (and fail on)
    # a poison payload before we can dead-letter it.
    return message.body


def bind_consumer(broker: KafkaBroker, consumer: EventConsumer) -> None:
    """Subscribe `consumer` to its topics; the offset is committed only after it returns."""
    topics = consumer.topics()
    if not topics:
        return

    async def on_record(body: bytes, message: KafkaMessage) -> None:
        raw = message.raw_message
        assert not isinstance(raw, tuple)  # single-record subscriber
        record = Record(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=raw.value,
            headers=tuple(raw.headers or ()),
        )
        try:
            await consumer.consume(record)
        except Exception:
            # Only reachable when even the dead-letter write failed: rewind so the record
            # is delivered again instead of being skipped by a later commit.
            await message.nack()
            raise
        await message.ack()

    broker.subscriber(
        *topics,
        group_id=consumer.consumer_name,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        decoder=_raw_body,
        title=f"{consumer.consumer_name}:{','.join(topics)}",
    )(on_record)
