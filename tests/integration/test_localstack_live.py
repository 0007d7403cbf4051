"""Live tests of the local stack: a real KRaft broker and a real private PostgreSQL cluster."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.runtime.localstack import KafkaNode, PostgresCluster, is_port_free


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.kafka
async def test_kafka_node_round_trip_and_clean_stop() -> None:
    node = KafkaNode()
    await node.astart()
    pid, port, state_dir = node.pid, node.port, node.state_dir
    assert pid is not None
    try:
        assert node.bootstrap_servers == f"127.0.0.1:{port}"
        topic = f"live-{uuid.uuid4().hex[:8]}"
        producer = AIOKafkaProducer(
            bootstrap_servers=node.bootstrap_servers, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello", key=b"zone-1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=node.bootstrap_servers,
            group_id=f"g-{topic}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            record = await consumer.getone()
        finally:
            await consumer.stop()
        assert (record.key, record.value) == (b"zone-1", b"hello")
    finally:
        await node.astop()
    assert not node.running
    assert not _process_exists(pid)
    assert is_port_free(port)
    assert not state_dir.exists()


@pytest.mark.postgres
async def test_postgres_cluster_serves_a_private_database() -> None:
    async with PostgresCluster() as cluster:
        port, base_dir = cluster.port, cluster.base_dir
        url = await cluster.acreate_database("xiezuo_live")
        assert url == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/xiezuo_live"
        # Creating it again is harmless: services call this on every start.
        await cluster.acreate_database("xiezuo_live")
        conn = await asyncpg.connect(cluster.dsn("xiezuo_live"))
        try:
            assert await conn.fetchval("select 1") == 1
            assert await conn.fetchval("select current_database()") == "xiezuo_live"
        finally:
            await conn.close()
    assert is_port_free(port)
    assert not base_dir.exists()
