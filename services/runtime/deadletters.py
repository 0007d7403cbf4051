"""Reading and replaying a service's dead-letter topic."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.runtime.kafka_security import KafkaSecurity, client_kwargs

DEAD_LETTER_PREFIX = "x-dead-letter-"
ORIGIN_PREFIX = "x-original-"
# Reading stops at the end offsets seen at the start; this only bounds a stuck broker.
READ_SECONDS = 30.0


@dataclass(frozen=True)
class DeadLetter:
    """One parked record and why it was parked."""

    offset: int
    partition: int
    event_id: str
    event_type: str
    reason: str
    error: str
    attempts: str
    original_topic: str
    original_partition: str
    original_offset: str
    dead_lettered_at: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers, without the ones the dead-lettering added."""
        return [
            (name, value)
            for name, value in self.headers
            if not name.startswith((DEAD_LETTER_PREFIX, ORIGIN_PREFIX))
        ]


def dead_letter_topic(service: str) -> str:
    """Where `service` parks the records it cannot apply."""
    return f"xiezuo.{service}.dead-letter"


async def read_dead_letters(
    bootstrap: str, service: str, *, limit: int = 1000, security: KafkaSecurity | None = None
) -> list[DeadLetter]:
    """Every record on the service's dead-letter topic, oldest first (reads, never commits)."""
    topic = dead_letter_topic(service)
    # No group: reading must not move anybody's offsets.
    partitions = await _partitions(bootstrap, topic, security)
    if not partitions:
        return []
    # No group: reading must not move anybody's offsets.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_kwargs(security),
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, number) for number in partitions]
        ends = await consumer.end_offsets(assigned)
        letters: list[DeadLetter] = []
        remaining = {tp for tp in assigned if ends[tp] > 0}
        deadline = time.monotonic() + READ_SECONDS
        while remaining and len(letters) < limit and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    letters.append(_letter(record.partition, record.offset, record))
                    # Done with a partition once its last record (as of the start) is read.
                    if record.offset >= ends[tp] - 1:
                        remaining.discard(tp)
        return sorted(letters, key=lambda letter: letter.dead_lettered_at)[:limit]
    finally:
        await consumer.stop()


async def replay(
    bootstrap: str, letters: list[DeadLetter], *, security: KafkaSecurity | None = None
) -> int:
    """Publish each letter again to its original topic; consumers skip ids already applied."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        client_id=f"xiezuo-dead-letter-replay-{uuid.uuid4().hex[:8]}",
        **client_kwargs(security),
    )
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                letter.original_topic,
                value=letter.value,
                key=letter.key,
                headers=letter.replay_headers(),
            )
    finally:
        await producer.stop()
    return len(letters)


async def _partitions(bootstrap: str, topic: str, security: KafkaSecurity | None) -> list[int]:
    # A group-less consumer keeps no partition metadata for topics it was not assigned, so ask
    # the cluster; an unknown topic has no partitions (and is not created by asking).
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs(security))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry.get("topic") == topic and not entry.get("error_code"):
            return sorted(part["partition"] for part in entry.get("partitions", []))
    return []


def _letter(partition: int, offset: int, record: object) -> DeadLetter:
    headers = tuple(getattr(record, "headers", None) or ())
    text = {name: value.decode(errors="replace") for name, value in headers}
    return DeadLetter(
        offset=offset,
        partition=partition,
        event_id=text.get("ce_id", ""),
        event_type=text.get("ce_type", ""),
        reason=text.get("x-dead-letter-reason", ""),
        error=text.get("x-dead-letter-error", ""),
        attempts=text.get("x-dead-letter-attempts", ""),
        original_topic=text.get("x-original-topic", ""),
        original_partition=text.get("x-original-partition", ""),
        original_offset=text.get("x-original-offset", ""),
        dead_lettered_at=text.get("x-dead-letter-at", ""),
        key=getattr(record, "key", None),
        value=getattr(record, "value", None),
        headers=headers,
    )
