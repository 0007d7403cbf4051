"""Anchoring audit chain heads outside the database: signed checkpoints on a Kafka topic.

A service writes a checkpoint of every county head that moved through its outbox (so a crash
loses none and publishes none twice as different facts); `read_checkpoints` reads the topic back
for `xiezuo audit verify`. The topic keeps records for ever and nobody who can only write to the
service's database can delete them, so a head once checkpointed cannot be moved back unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from services.contracts.audit import CHECKPOINTS_TOPIC, AuditCheckpointed
from services.runtime.audit import ChainAnchor, audit_key_of, sound_heads
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.envelope import format_time
from services.runtime.kafka_security import KafkaSecurity, client_kwargs
from services.runtime.outbox import record_event

log = logging.getLogger(__name__)

CHECKPOINT_SEAL = "xiezuo.audit.checkpoint.v1"
READ_SECONDS = 60.0


def checkpoint_signature(
    key: AuditKey, *, service: str, county_id: str, seq: int, head_hash: str, at: datetime
) -> str:
    """The HMAC that makes a checkpoint the service's own word."""
    return key.seal(
        CHECKPOINT_SEAL,
        {
            "service": service,
            "county_id": county_id,
            "seq": seq,
            "head_hash": head_hash,
            "at": format_time(at),
        },
    )


def checkpoint_event(
    key: AuditKey, service: str, anchor: ChainAnchor, at: datetime
) -> AuditCheckpointed:
    """A signed checkpoint of one county head."""
    return AuditCheckpointed(
        county_id=anchor.county_id,
        service=service,
        seq=anchor.seq,
        head_hash=anchor.head_hash,
        checkpointed_at=at,
        key_id=key.key_id,
        signature=checkpoint_signature(
            key,
            service=service,
            county_id=anchor.county_id,
            seq=anchor.seq,
            head_hash=anchor.head_hash,
            at=at,
        ),
    )


def is_signed_by(key: AuditKey, checkpoint: AuditCheckpointed) -> bool:
    """True when `key` made this checkpoint."""
    expected = checkpoint_signature(
        key,
        service=checkpoint.service,
        county_id=checkpoint.county_id,
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        at=checkpoint.checkpointed_at,
    )
    return checkpoint.key_id == key.key_id and checkpoint.signature == expected


async def record_checkpoints(
    database: Database, service: str, *, published: dict[str, int] | None = None
) -> list[ChainAnchor]:
    """Put a checkpoint of each sound county head into the outbox; return those written.

    `published` (county → seq) skips heads that have not moved since the last call, and is
    updated after the commit.
    """
    done = published if published is not None else {}
    now = datetime.now(UTC)
    async with database.transaction() as session:
        key = audit_key_of(session)
        fresh = [a for a in await sound_heads(session, key) if done.get(a.county_id) != a.seq]
        for anchor in fresh:
            record_event(
                session,
                checkpoint_event(key, service, anchor, now),
                source=f"xiezuo/{service}",
                occurred_at=now,
            )
    for anchor in fresh:
        done[anchor.county_id] = anchor.seq
    return fresh


class CheckpointKeeper:
    """Checkpoints a service's moved chain heads every `interval` seconds until stopped."""

    def __init__(self, database: Database, service: str, *, interval: float) -> None:
        self._database = database
        self._service = service
        self._interval = interval
        self._published: dict[str, int] = {}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Checkpoint at start (after a restart nothing is known to be anchored), then on time."""
        while True:
            try:
                written = await record_checkpoints(
                    self._database, self._service, published=self._published
                )
                if written:
                    log.info("audit checkpoints recorded", extra={"chains": len(written)})
            except Exception:  # a failed round must not end the keeper; the next one retries
                log.exception("audit checkpoint failed")
            if self._stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def stop(self) -> None:
        """Make one last round (anchoring what this process wrote), then finish."""
        self._stop.set()


@dataclass(frozen=True)
class CheckpointRead:
    """What the checkpoint topic holds for one service."""

    anchors: tuple[ChainAnchor, ...]
    # Claimed to be the service's but not signed with its key: injected, or another key.
    unsigned: int
    records_read: int


async def read_checkpoints(
    bootstrap: str,
    service: str,
    key: AuditKey,
    *,
    read_seconds: float = READ_SECONDS,
    security: KafkaSecurity | None = None,
) -> CheckpointRead:
    """Every checkpoint of `service` on the topic, checked against its key (reads, never commits).

    Raises TimeoutError when the topic cannot be read to its end in time: a partial read would
    silently weaken the verification.
    """
    partitions = await _partitions(bootstrap, CHECKPOINTS_TOPIC, security)
    if not partitions:
        return CheckpointRead(anchors=(), unsigned=0, records_read=0)
    # No group: reading must not move anybody's offsets.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        **client_kwargs(security),
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(CHECKPOINTS_TOPIC, number) for number in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if ends[tp] > 0}
        anchors: list[ChainAnchor] = []
        unsigned = read = 0
        deadline = time.monotonic() + read_seconds
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{CHECKPOINTS_TOPIC} not read to its end in {read_seconds}s")
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=2000)
            for tp, records in batch.items():
                for record in records:
                    read += 1
                    if record.offset >= ends[tp] - 1:
                        remaining.discard(tp)
                    checkpoint = _checkpoint_of(record.value)
                    if checkpoint is None or checkpoint.service != service:
                        continue
                    if not is_signed_by(key, checkpoint):
                        unsigned += 1
                        continue
                    anchors.append(
                        ChainAnchor(checkpoint.county_id, checkpoint.seq, checkpoint.head_hash)
                    )
        return CheckpointRead(anchors=tuple(anchors), unsigned=unsigned, records_read=read)
    finally:
        await consumer.stop()


def _checkpoint_of(value: bytes | None) -> AuditCheckpointed | None:
    """Parse one record; anything else on the topic is not a checkpoint of ours."""
    if not value:
        return None
    try:
        return AuditCheckpointed.read(value)
    except (ValidationError, ValueError):
        return None


async def _partitions(bootstrap: str, topic: str, security: KafkaSecurity | None) -> list[int]:
    """The topic's partitions, or none when it does not exist yet (never creates it)."""
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
