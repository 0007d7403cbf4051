"""Events applied per second by one consumer, one record per transaction vs in batches.

Run: ``.venv/bin/python bench/consumer_batch.py [--service cases|assessment] [--events N]
[--batch 1 --batch 100 ...]`` (SQLite in a temp dir, its own Kafka node).

N events are produced to the service's topics first; then, for each batch size, a fresh
SQLite database and a new consumer group read them all through the real path (FastStream
subscriber → EventConsumer → handlers, inbox rows, offsets committed after the transaction).
The clock runs from the first handler call to the moment the group's committed offsets reach
the end of every partition, so joining the group is not counted. One JSON object is printed;
nothing is asserted.

- ``cases``: ClueRegistered (clue, case file, disposal clock, audit entry per event).
- ``assessment``: the synthetic mix of events the KPI projection counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.registry import EVENT_TYPES
from services.runtime.audit_key import AuditKey
from services.runtime.bus import bind_consumer, build_broker, quiet_transient_kafka_errors
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.ids import time_ordered_uuid
from services.runtime.inbox import EventConsumer, Outcome, Record
from services.runtime.localstack import KafkaNode
from services.runtime.migrate import upgrade_async

ZONES = 6
WAIT_SECONDS = 600.0


class _TimedConsumer(EventConsumer):
    """Notes when the first record arrives, so joining the group is not timed."""

    first_record_at: float | None = None

    async def consume(self, record: Record) -> Outcome:
        self._arrived()
        return await super().consume(record)

    async def consume_batch(self, records: Sequence[Record]) -> list[Outcome]:
        self._arrived()
        return await super().consume_batch(records)

    def _arrived(self) -> None:
        if self.first_record_at is None:
            self.first_record_at = time.perf_counter()


class _NoDeadLetters:
    """Every event here is valid: a dead letter would be a bug in the bench."""

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> Any:
        raise RuntimeError(f"unexpected dead letter on {topic}")


def clue_event(
    n: int, *, county_id: str, township_id: str, clue_id: str, report_id: str, at: datetime
) -> ClueRegistered:
    """The n-th bench clue: a village cadre, one category, registered at `at`."""
    return ClueRegistered(
        county_id=county_id,
        zone_id=f"z-{n % ZONES}",
        clue_id=clue_id,
        report_id=report_id,
        township_id=township_id,
        channel="letter",
        allegation_categories=["misuse-of-funds"],
        subject=ReportedSubject(
            name=f"subject {n}",
            post="村党支部书记",
            unit=f"village {n % 50}",
            township_id=township_id,
            cadre_level="village",
        ),
        real_name=False,
        received_at=at,
        registered_at=at,
    )


def _clue_envelopes(count: int) -> list[Envelope]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    envelopes = []
    for n in range(count):
        event = clue_event(
            n,
            county_id="c-bench",
            township_id=f"t-{rng.randrange(18):02d}",
            # Ids as intake mints them (time-ordered, runtime/ids.py).
            clue_id=f"clue-{time_ordered_uuid().hex}",
            report_id=f"report-{time_ordered_uuid().hex}",
            at=now,
        )
        envelopes.append(_envelope(event, str(time_ordered_uuid()), now))
    return envelopes


def _assessment_envelopes(count: int) -> list[Envelope]:
    from services.assessment.synthetic import County, synthetic_events

    return [
        _envelope(item.event, item.event_id, item.ce_time)
        for item in synthetic_events(count, seed=11, county=County())
    ]


def _envelope(event: Any, event_id: str, at: datetime) -> Envelope:
    return Envelope(
        id=event_id,
        type=event.event_type,
        source="xiezuo/bench",
        time=at,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
    )


def _route(service: str, consumer: EventConsumer) -> None:
    if service == "cases":
        from services.cases.domain.rules import DEFAULT_RULES
        from services.cases.handlers.clue_registered import ClueRegisteredHandler
        from services.contracts.intake import ClueRegistered

        clues = ClueRegisteredHandler([DEFAULT_RULES])
        consumer.on(ClueRegistered, clues, batch_handler=clues.apply_batch)
    else:
        from services.assessment.domain.quarter import AssessmentCalendar
        from services.assessment.handlers.mappers import projections
        from services.assessment.handlers.projection import register_handlers

        register_handlers(consumer, AssessmentCalendar(), projections())


async def _produce(bootstrap: str, envelopes: list[Envelope], topic_of: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(set(topic_of.values()))
        await admin.create_topics(
            [NewTopic(t, num_partitions=3, replication_factor=1) for t in topics]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic_of[envelope.type],
                envelope.data,
                key=f"{envelope.county_id}:{envelope.zone_id}".encode(),
                headers=envelope.headers(),
            )
            for envelope in envelopes
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _caught_up(
    admin: AIOKafkaAdminClient, group: str, ends: dict[TopicPartition, int]
) -> bool:
    committed = await admin.list_consumer_group_offsets(group)
    return all(
        end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()
    )


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the group-less consumer fetches lazily
    return consumer.partitions_for_topic(topic) or set()


async def run_once(
    bootstrap: str, service: str, batch_size: int, scratch: Path, events: int
) -> dict[str, Any]:
    """Consume every produced event with a fresh database and group; the measured rate."""
    url = (
        f"sqlite+aiosqlite:///{scratch / f'{service}-{batch_size}-{uuid.uuid4().hex[:6]}.sqlite3'}"
    )
    await upgrade_async(service, url)
    database = Database(url, audit_key=AuditKey.generate())
    consumer = _TimedConsumer(
        service=f"{service}-bench-{uuid.uuid4().hex[:6]}",
        database=database,
        dead_letter_producer=_NoDeadLetters(),
        batch_size=batch_size,
    )
    _route(service, consumer)
    ends = await _end_offsets(bootstrap, consumer.topics())
    broker = build_broker(bootstrap, client_id=f"bench-{uuid.uuid4().hex[:6]}")
    bind_consumer(broker, consumer)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    cpu_before = time.process_time()
    await broker.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not await _caught_up(admin, consumer.consumer_name, ends):
            if time.monotonic() > deadline:
                raise RuntimeError("the consumer did not catch up in time")
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
    finally:
        await broker.stop()
        await admin.close()
        await database.dispose()
    cpu = time.process_time() - cpu_before
    assert consumer.first_record_at is not None
    elapsed = finished - consumer.first_record_at
    return {
        "batch_size": batch_size,
        "events": events,
        "seconds": round(elapsed, 2),
        "events_per_second": round(events / elapsed),
        "process_cpu_seconds": round(cpu, 2),
        "cpu_ms_per_event": round(cpu * 1000 / events, 3),
    }


async def main() -> None:
    """Parse arguments, produce once, consume once per batch size, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=("cases", "assessment"), default="cases")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch", type=int, action="append", help="repeatable (default 1, 100)")
    args = parser.parse_args()
    # aiokafka's messages (e.g. the coordinator election of the fresh broker) stay off stdout.
    logging.basicConfig(level=logging.WARNING)
    quiet_transient_kafka_errors()
    sizes = args.batch or [1, 100]
    envelopes = (
        _clue_envelopes(args.events)
        if args.service == "cases"
        else _assessment_envelopes(args.events)
    )
    probe = EventConsumer(service="probe", database=None, dead_letter_producer=_NoDeadLetters())  # type: ignore[arg-type]
    _route(args.service, probe)
    topic_of = {name: cls.topic for name, cls in EVENT_TYPES.items()}
    envelopes = [e for e in envelopes if topic_of[e.type] in probe.topics()]
    with tempfile.TemporaryDirectory() as scratch:
        node = KafkaNode(Path(scratch) / "kafka", partitions=3)
        await node.astart()
        try:
            await _produce(node.bootstrap_servers, envelopes, topic_of)
            runs = [
                await run_once(
                    node.bootstrap_servers, args.service, size, Path(scratch), len(envelopes)
                )
                for size in sizes
            ]
        finally:
            await node.astop()
    print(
        json.dumps(
            {
                "service": args.service,
                "database": "sqlite",
                "events": len(envelopes),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
