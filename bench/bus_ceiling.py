"""Raw aiokafka produce-then-consume throughput on the local broker: the bus's ceiling.

Run: ``.venv/bin/python bench/bus_ceiling.py [--messages N] [--bootstrap HOST:PORT]``.
Prints one JSON object; MB means 10**6 bytes of message payload. Never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.localstack.kafka import KafkaNode

# How many sends may be in flight before we wait: bounds memory, keeps batches full.
SEND_WINDOW = 20_000


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create a fresh topic with `partitions` partitions, replication factor 1."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, messages: int, payload: bytes) -> float:
    """Send `messages` copies of `payload` (acks=all, idempotent); return elapsed seconds."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        began = time.perf_counter()
        pending: list[asyncio.Future[Any]] = []
        for index in range(messages):
            # Keys spread records over every partition, as zone ids do in the services.
            key = str(index % 1024).encode()
            pending.append(await producer.send(topic, payload, key=key))
            if len(pending) >= SEND_WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
        return time.perf_counter() - began
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, messages: int, partitions: int) -> float:
    """Read `messages` records back from the start of `topic`; return elapsed seconds."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        seen = 0
        began = time.perf_counter()
        while seen < messages:
            batches = await consumer.getmany(timeout_ms=5000, max_records=50_000)
            if not batches:
                raise RuntimeError(f"consumer stalled after {seen} of {messages} messages")
            seen += sum(len(records) for records in batches.values())
        return time.perf_counter() - began
    finally:
        await consumer.stop()


async def run(bootstrap: str, messages: int, message_bytes: int, partitions: int) -> dict[str, Any]:
    """Create a topic, produce then consume, and return the numbers."""
    topic = f"bench-bus-ceiling-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    await create_topic(bootstrap, topic, partitions)
    payload = os.urandom(message_bytes)
    produce_s = await produce(bootstrap, topic, messages, payload)
    consume_s = await consume(bootstrap, topic, messages, partitions)
    megabytes = messages * message_bytes / 1e6
    return {
        "messages": messages,
        "message_bytes": message_bytes,
        "partitions": partitions,
        "produce_seconds": round(produce_s, 3),
        "produce_msgs_per_s": round(messages / produce_s),
        "produce_mb_per_s": round(megabytes / produce_s, 2),
        "consume_seconds": round(consume_s, 3),
        "consume_msgs_per_s": round(messages / consume_s),
        "consume_mb_per_s": round(megabytes / consume_s, 2),
        "elapsed": round(time.perf_counter() - began, 3),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Run against `--bootstrap`, or against a KafkaNode of our own."""
    if args.bootstrap:
        return await run(args.bootstrap, args.messages, args.message_bytes, args.partitions)
    async with KafkaNode(partitions=args.partitions, heap=args.heap) as node:
        result = await run(
            node.bootstrap_servers, args.messages, args.message_bytes, args.partitions
        )
        result["broker_cold_start_seconds"] = round(node.cold_start_seconds or 0.0, 2)
        return result


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the benchmark, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--message-bytes", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting one")
    parser.add_argument("--heap", default="1g", help="broker heap when starting our own")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
