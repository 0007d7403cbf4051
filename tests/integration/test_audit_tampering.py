"""Tampering with a migrated audit log on SQLite and PostgreSQL, anchored on a real Kafka.

Each tampering is done the way someone with write access to the database (and nothing else)
would: raw SQL, no audit key, no Kafka. The checkpoints go out through the outbox and the relay
and are read back from the topic, as `xiezuo audit verify` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import text
from sqlmodel import col, select

from services.contracts.audit import CHECKPOINTS_TOPIC
from services.runtime import audit
from services.runtime.audit import AuditCountyHead, AuditEntry, legacy_entry_hash
from services.runtime.audit_checkpoints import (
    CheckpointKeeper,
    checkpoint_event,
    read_checkpoints,
    record_checkpoints,
)
from services.runtime.audit_key import AuditKey, load_audit_key
from services.runtime.db import Database
from services.runtime.host import ensure_topics
from services.runtime.localstack import KafkaNode, PostgresCluster
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.migrate import upgrade, upgrade_async
from services.runtime.outbox import KafkaEventProducer, OutboxRelay, record_event
from tests.conftest import MakeDatabase

COUNTY, OTHER = "c-audit", "c-other"
ROOT = Path(__file__).resolve().parents[2]

Tamper = Callable[[Database], Awaitable[None]]


async def _sql(database: Database, statement: str, **params: object) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(text(statement), params)


async def _append(database: Database, county: str, n: int) -> None:
    for i in range(n):
        async with database.transaction() as session:
            await audit.append(
                session,
                county_id=county,
                actor=f"officer-{i}",
                action="clue.read",
                record_type="clue",
                record_id=f"{county}-{i}",
                detail={"n": i},
            )


async def _anchor(database: Database, service: str, kafka: KafkaNode) -> int:
    """Checkpoint every head through the outbox and publish it to Kafka."""
    await ensure_topics(kafka.bootstrap_servers, partitions=3, replication_factor=1)
    written = await record_checkpoints(database, service)
    producer = KafkaEventProducer(kafka.bootstrap_servers, client_id=f"test-{service}")
    await producer.start()
    try:
        await OutboxRelay(database, producer).publish_pending()
    finally:
        await producer.stop()
    return len(written)


async def _verify(database: Database, service: str, kafka: KafkaNode) -> audit.AuditVerification:
    assert database.audit_key is not None
    read = await read_checkpoints(kafka.bootstrap_servers, service, database.audit_key)
    async with database.session() as session:
        return await audit.verify(session, database.audit_key, anchors=read.anchors)


async def _truncate_and_move_head_back(database: Database, seq: int = 4) -> None:
    """Delete the entries after `seq` and set the head to entry `seq`."""
    await _sql(
        database, "DELETE FROM audit_entry WHERE county_id = :c AND seq > :s", c=COUNTY, s=seq
    )
    await _sql(
        database,
        "UPDATE audit_county_head SET last_seq = :s, last_hash = (SELECT entry_hash FROM"
        " audit_entry WHERE county_id = :c AND seq = :s) WHERE county_id = :c",
        c=COUNTY,
        s=seq,
    )


async def _rewrite_and_rehash(database: Database) -> None:
    """Edit entry 3 and recompute every later hash and the head, with the best key at hand."""
    forger = AuditKey.generate()  # the real one is in a file the database does not hold
    async with database.session() as session, session.begin():
        rows = (
            await session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.county_id) == COUNTY, col(AuditEntry.seq) >= 3)
                .order_by(col(AuditEntry.seq))
            )
        ).all()
        prev = rows[0].prev_hash
        for row in rows:
            if row.seq == 3:
                row.actor = "nobody"
            row.prev_hash = prev
            row.entry_hash = audit.entry_seal(forger, row)
            prev = row.entry_hash
            session.add(row)
    await _sql(
        database,
        "UPDATE audit_county_head SET last_hash = :h WHERE county_id = :c",
        h=prev,
        c=COUNTY,
    )


async def _edit_without_rehash(database: Database) -> None:
    await _sql(
        database,
        "UPDATE audit_entry SET record_id = 'someone-else' WHERE county_id = :c AND seq = 3",
        c=COUNTY,
    )


async def _delete_middle(database: Database) -> None:
    await _sql(database, "DELETE FROM audit_entry WHERE county_id = :c AND seq = 3", c=COUNTY)


TAMPERINGS: dict[str, tuple[Tamper, int, str]] = {
    "truncate tail, move head back": (_truncate_and_move_head_back, 5, "truncated"),
    "edit and recompute every hash": (_rewrite_and_rehash, 3, "keyed seal"),
    "edit without recomputing": (_edit_without_rehash, 3, "keyed seal"),
    "delete a middle entry": (_delete_middle, 3, "missing"),
}


@pytest.mark.parametrize("kind", list(TAMPERINGS))
async def test_each_tampering_is_detected(
    make_database: MakeDatabase, kafka: KafkaNode, kind: str
) -> None:
    tamper, seq, words = TAMPERINGS[kind]
    database = await make_database("intake")
    service = f"intake-{uuid.uuid4().hex[:8]}"
    await _append(database, COUNTY, 6)
    await _append(database, OTHER, 2)
    assert await _anchor(database, service, kafka) == 2
    before = await _verify(database, service, kafka)
    assert before.ok and before.anchors_checked == 2, before

    await tamper(database)

    result = await _verify(database, service, kafka)
    assert [(p.chain, p.seq) for p in result.problems] == [(COUNTY, seq)], result
    assert words in result.problems[0].problem


async def test_an_untampered_log_verifies_intact_as_it_grows(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    database = await make_database("cases")
    service = f"cases-{uuid.uuid4().hex[:8]}"
    await _append(database, COUNTY, 3)
    assert await _anchor(database, service, kafka) == 1
    # Appends after a checkpoint, a second checkpoint, and one more append are all fine.
    await _append(database, COUNTY, 2)
    await _append(database, OTHER, 1)
    assert await _anchor(database, service, kafka) == 2
    await _append(database, COUNTY, 1)

    result = await _verify(database, service, kafka)
    assert result.ok, result
    assert (result.entries_checked, result.chains_checked, result.anchors_checked) == (7, 2, 3)
    # Entry 6 of the first county came after its last checkpoint (at 5).
    assert result.unanchored_entries == 1


async def test_an_injected_checkpoint_is_not_trusted(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    """A database writer can put a checkpoint in the outbox, but cannot sign it."""
    database = await make_database("staffing")
    service = f"staffing-{uuid.uuid4().hex[:8]}"
    await _append(database, COUNTY, 3)
    assert await _anchor(database, service, kafka) == 1
    await _truncate_and_move_head_back(database, 2)
    # The forger checkpoints the shortened chain, signed with a key of their own...
    async with database.transaction() as session:
        head = (await session.exec(select(AuditCountyHead))).one()
        anchor = audit.ChainAnchor(COUNTY, head.last_seq, head.last_hash)
        forged = checkpoint_event(AuditKey.generate(), service, anchor, datetime.now(UTC))
        record_event(session, forged, source=f"xiezuo/{service}")
    # (the service's own keeper, unaware, anchors the shortened head too: that hides nothing)
    assert await _anchor(database, service, kafka) == 1
    assert database.audit_key is not None
    read = await read_checkpoints(kafka.bootstrap_servers, service, database.audit_key)
    assert (len(read.anchors), read.unsigned) == (2, 1)
    # ...which is ignored, and the genuine one still shows the truncation.
    result = await _verify(database, service, kafka)
    assert [(p.chain, p.seq) for p in result.problems] == [(COUNTY, 3)]


async def test_checkpoints_are_written_only_for_heads_that_moved(
    make_database: MakeDatabase,
) -> None:
    database = await make_database("assessment")
    await _append(database, COUNTY, 2)
    published: dict[str, int] = {}
    assert len(await record_checkpoints(database, "assessment", published=published)) == 1
    assert await record_checkpoints(database, "assessment", published=published) == []
    await _append(database, COUNTY, 1)
    moved = await record_checkpoints(database, "assessment", published=published)
    assert [(a.county_id, a.seq) for a in moved] == [(COUNTY, 3)]
    async with database.session() as session:
        payloads = (
            await session.exec(text("SELECT payload FROM outbox_message ORDER BY id"))  # type: ignore[call-overload]
        ).all()
    assert len(payloads) == 2
    # Only the head goes on Kafka: no actor, record or detail of any entry.
    assert set(json.loads(payloads[0][0])) == {
        "county_id",
        "zone_id",
        "service",
        "seq",
        "head_hash",
        "checkpointed_at",
        "key_id",
        "signature",
    }


async def test_the_keeper_checkpoints_at_start_and_once_more_when_stopped(
    make_database: MakeDatabase,
) -> None:
    database = await make_database("cases")
    await _append(database, COUNTY, 2)
    first_round = asyncio.Event()
    database.on_outbox_commit(first_round.set)
    keeper = CheckpointKeeper(database, "cases", interval=3600)
    running = asyncio.create_task(keeper.run())
    try:
        await asyncio.wait_for(first_round.wait(), 30)
        await _append(database, COUNTY, 1)
        await _append(database, OTHER, 1)
    finally:
        keeper.stop()
        await running
    # The last round anchors what the process wrote since, without waiting an hour.
    async with database.session() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    heads = [(json.loads(r.payload)["county_id"], json.loads(r.payload)["seq"]) for r in rows]
    assert heads == [(COUNTY, 2), (COUNTY, 3), (OTHER, 1)]
    assert {r.topic for r in rows} == {"xiezuo.audit.checkpoints"}
    assert {r.partition_key for r in rows} == {f"cases:{COUNTY}", f"cases:{OTHER}"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_unkeyed_entries_from_before_the_migration_stay_verifiable(
    tmp_path: Path, postgres: PostgresCluster, backend: str
) -> None:
    """A database written by the unkeyed chain keeps its entries; new ones are keyed."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'legacy.sqlite3'}"
    else:
        url = await postgres.acreate_database(f"legacy_{uuid.uuid4().hex[:10]}")
    # The schema as the unkeyed chain left it.
    await asyncio.to_thread(upgrade, "cases", url, "runtime_0001")
    database = Database(url, audit_key=AuditKey.generate())
    try:
        prev = audit.GENESIS_HASH
        for i in range(1, 4):
            fields = {
                "id": i,
                "county_id": COUNTY,
                "at": datetime(2026, 1, i, 8, tzinfo=UTC),
                "actor": "old",
                "action": "clue.read",
                "record_type": "clue",
                "record_id": f"c-{i}",
                "detail": "{}",
                "prev_hash": prev,
            }
            prev = legacy_entry_hash(**fields)  # type: ignore[arg-type]
            await _sql(
                database,
                "INSERT INTO audit_entry (id, county_id, at, actor, action, record_type,"
                " record_id, detail, prev_hash, entry_hash) VALUES (:id, :county_id, :at,"
                " :actor, :action, :record_type, :record_id, :detail, :prev_hash, :entry_hash)",
                **fields,
                entry_hash=prev,
            )
        await _sql(database, "UPDATE audit_chain_head SET last_id = 3, last_hash = :h", h=prev)

        await upgrade_async("cases", url)
        await _append(database, COUNTY, 2)
        async with database.session() as session:
            ids = (await session.exec(select(AuditEntry.id).order_by(col(AuditEntry.id)))).all()
            verified = await audit.verify(session, database.audit_key)  # type: ignore[arg-type]
        assert None not in ids and len(set(ids)) == 5
        assert verified.ok and verified.entries_checked == 5, verified

        # Truncating the legacy chain now breaks every keyed chain that sealed its old head.
        await _sql(database, "DELETE FROM audit_entry WHERE id = 3")
        await _sql(
            database,
            "UPDATE audit_chain_head SET last_id = 2, last_hash = (SELECT"
            " entry_hash FROM audit_entry WHERE id = 2)",
        )
        async with database.session() as session:
            broken = await audit.verify(session, database.audit_key)  # type: ignore[arg-type]
        assert [(p.chain, p.seq) for p in broken.problems] == [(COUNTY, 1)], broken
    finally:
        await database.dispose()


async def test_the_cli_reports_a_truncation_behind_a_checkpoint(
    tmp_path: Path, kafka: KafkaNode
) -> None:
    """`xiezuo audit verify` end to end: exit 0 intact, exit 1 once the tail is gone."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'intake.sqlite3'}"
    key_file = tmp_path / "secret" / "audit-intake.key"
    key_file.parent.mkdir()
    key_file.write_text(os.urandom(32).hex())
    env = {
        **os.environ,
        "XIEZUO_STATE_DIR": str(tmp_path / "state"),
        "XIEZUO_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "XIEZUO_INTAKE_DATABASE_URL": url,
        "XIEZUO_INTAKE_AUDIT_KEY_FILE": str(key_file),
    }
    await upgrade_async("intake", url)
    database = Database(url, audit_key=load_audit_key(key_file, create=False))
    try:
        await _append(database, COUNTY, 6)
        code, out = await _xiezuo(env, "audit", "checkpoint", "intake")
        assert code == 0, out
        producer = KafkaEventProducer(kafka.bootstrap_servers, client_id="test-cli-relay")
        await ensure_topics(kafka.bootstrap_servers, partitions=3, replication_factor=1)
        await producer.start()
        try:
            assert await OutboxRelay(database, producer).publish_pending() == 1
        finally:
            await producer.stop()

        code, out = await _xiezuo(env, "audit", "verify", "intake", "--json")
        assert code == 0, out
        assert json.loads(out)["checkpoints_checked"] >= 1

        await _truncate_and_move_head_back(database)
        code, out = await _xiezuo(env, "audit", "verify", "intake", "--json")
        assert code == 1, out
        assert json.loads(out)["problems"][0]["seq"] == 5
        # Without Kafka the truncation cannot be seen, and the CLI refuses to pretend.
        code, _ = await _xiezuo(
            {**env, "XIEZUO_KAFKA_BOOTSTRAP": "127.0.0.1:9"}, "audit", "verify", "intake"
        )
        assert code == 3
    finally:
        await database.dispose()


async def _xiezuo(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode() + err.decode()


async def test_the_checkpoint_topic_is_created_to_keep_records_for_ever(kafka: KafkaNode) -> None:
    await ensure_topics(kafka.bootstrap_servers, partitions=3, replication_factor=1)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, CHECKPOINTS_TOPIC)]
        )
    finally:
        await admin.close()
    (resource,) = response.resources
    configs = {entry[0]: entry[1] for entry in resource[4]}
    assert (configs["retention.ms"], configs["cleanup.policy"]) == ("-1", "delete")
