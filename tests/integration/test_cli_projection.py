"""`xiezuo projection rebuild assessment` on a real broker and database.

A private Kafka node: the command acts on the group `xiezuo-assessment`, which the e2e stack's
assessment service uses on the session broker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from sqlmodel import func, select

from services.assessment.store.tables import KpiTally, WorkPlanRow
from services.cli.projection import OWNED_TABLES, PROJECTION_TABLES
from services.runtime.db import Database
from services.runtime.localstack import KafkaNode
from services.runtime.messaging_tables import InboxEntry
from services.runtime.migrate import upgrade_async

pytestmark = [pytest.mark.kafka]

XIEZUO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "xiezuo"
GROUP = "xiezuo-assessment"


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[KafkaNode]:
    """A broker of this module's own, so rewinding the group touches no running service."""
    node = KafkaNode(partitions=1)
    await node.astart()
    try:
        yield node
    finally:
        await node.astop()


def _env(node: KafkaNode, state: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XIEZUO_", "OTEL_"))}
    env.update(
        XIEZUO_STATE_DIR=str(state),
        XIEZUO_KAFKA_BOOTSTRAP=node.bootstrap_servers,
        XIEZUO_ASSESSMENT_DATABASE_URL=url,
    )
    return env


def _rebuild(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XIEZUO), "projection", "rebuild", "assessment", "--yes", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _consumed(node: KafkaNode, topic: str, records: int) -> TopicPartition:
    """A topic with `records` records, all of them committed by the assessment group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=node.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=node.bootstrap_servers)
    await producer.start()
    try:
        for n in range(records):
            await producer.send_and_wait(topic, f"event {n}".encode(), key=b"z-1")
    finally:
        await producer.stop()
    partition = TopicPartition(topic, 0)
    await _commit(node, {partition: records})
    return partition


async def _commit(node: KafkaNode, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=node.bootstrap_servers, group_id=GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def _committed(node: KafkaNode, partition: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=node.bootstrap_servers)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(GROUP, partitions=[partition])
    finally:
        await admin.close()
    return found[partition].offset


async def test_rebuild_empties_the_projection_keeps_owned_rows_and_rewinds_the_group(
    broker: KafkaNode, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'assessment.sqlite3'}"
    env = _env(broker, tmp_path, url)
    await upgrade_async("assessment", url)
    partition = await _consumed(broker, f"xiezuo.test.rebuild.{uuid.uuid4().hex[:6]}", 5)
    database = Database(url)
    now = datetime.now(UTC)
    async with database.transaction() as session:
        session.add(
            KpiTally(
                county_id="c",
                quarter="2026Q4",
                level="zone",
                subject_id="z-1",
                zone_id="z-1",
                kpi="clues_received",
                value=5,
            )
        )
        session.add(
            WorkPlanRow(
                county_id="c", year=2026, themes="[]", revision=1, defined_by="p-1", defined_at=now
            )
        )
        for consumer in (GROUP, "xiezuo-cases"):
            session.add(
                InboxEntry(
                    consumer=consumer,
                    event_id=str(uuid.uuid4()),
                    event_type="t",
                    county_id="c",
                    processed_at=now,
                )
            )

    done = _rebuild(env)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "Start assessment to rebuild" in said
    assert await _committed(broker, partition) == 0
    async with database.session() as session:
        assert (await session.exec(select(func.count()).select_from(KpiTally))).one() == 0
        assert (await session.exec(select(func.count()).select_from(WorkPlanRow))).one() == 1
        left = (await session.exec(select(InboxEntry.consumer))).all()
        assert list(left) == ["xiezuo-cases"]
    await database.dispose()


async def test_rebuild_refuses_while_the_service_consumes(
    broker: KafkaNode, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'assessment.sqlite3'}"
    await upgrade_async("assessment", url)
    topic = f"xiezuo.test.running.{uuid.uuid4().hex[:6]}"
    partition = await _consumed(broker, topic, 3)
    member = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=GROUP,
        enable_auto_commit=False,
    )
    await member.start()
    try:
        while not member.assignment():  # joined the group and was given the partition
            await member.getmany(timeout_ms=500)
        # In a thread: the member must keep heartbeating while the command runs.
        refused = await asyncio.to_thread(_rebuild, _env(broker, tmp_path, url))
    finally:
        await member.stop()
    assert refused.returncode == 8, refused.stderr
    assert "stop every replica" in " ".join(refused.stderr.split())
    assert await _committed(broker, partition) == 3


async def test_rebuild_refuses_when_retention_deleted_counted_records(
    broker: KafkaNode, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'assessment.sqlite3'}"
    await upgrade_async("assessment", url)
    partition = await _consumed(broker, f"xiezuo.test.retention.{uuid.uuid4().hex[:6]}", 4)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records({partition: RecordsToDelete(before_offset=2)})
    finally:
        await admin.close()
    env = _env(broker, tmp_path, url)
    refused = _rebuild(env)
    assert refused.returncode == 9, refused.stderr
    assert "--allow-partial-history" in " ".join(refused.stderr.split())
    assert await _committed(broker, partition) == 4
    forced = _rebuild(env, "--allow-partial-history")
    assert forced.returncode == 0, forced.stderr
    assert await _committed(broker, partition) == 2


def test_every_assessment_table_is_either_projection_or_owned() -> None:
    from services.assessment.store import tables

    names = {
        table.name
        for model in vars(tables).values()
        if isinstance(model, type) and model.__module__ == tables.__name__
        if (table := getattr(model, "__table__", None)) is not None
    }
    projection, owned = set(PROJECTION_TABLES["assessment"]), set(OWNED_TABLES["assessment"])
    assert not projection & owned
    assert sorted(names - projection - owned) == [], "classify the new table in projection.py"
    assert sorted((projection | owned) - names) == []
