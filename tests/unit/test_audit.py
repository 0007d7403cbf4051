"""The hash-chained audit log on a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.audit import (
    GENESIS_HASH,
    AuditChainHead,
    AuditEntry,
    AuditVerification,
    append,
    audit_table_ddl,
    audit_tables,
    entry_hash,
    verify,
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An async engine on a fresh SQLite file holding only the audit tables."""
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=audit_tables()))
    yield eng
    await eng.dispose()


async def _append(engine: AsyncEngine, n: int, *, actor: str = "u-1") -> None:
    """Append n entries, each in its own committed transaction."""
    for i in range(n):
        async with AsyncSession(engine) as session:
            await append(
                session,
                county_id="330102",
                actor=actor,
                action="clue.read" if i % 2 else "report.submitted",
                record_type="clue",
                record_id=f"clue-{i}",
                detail={"reason": "review", "n": i, "注": "中文"},
            )
            await session.commit()


async def _verify(engine: AsyncEngine, chunk_size: int = 1000) -> AuditVerification:
    """Verify the chain in a fresh session."""
    async with AsyncSession(engine) as session:
        return await verify(session, chunk_size=chunk_size)


async def _sql(engine: AsyncEngine, statement: str) -> None:
    """Run raw SQL behind the audit module's back, as a tamperer would."""
    async with engine.begin() as conn:
        await conn.execute(text(statement))


async def test_appended_entries_form_a_valid_chain(engine: AsyncEngine) -> None:
    await _append(engine, 5)

    result = await _verify(engine)
    assert result.ok, result
    assert result.entries_checked == 5
    assert result.first_bad_id is None and result.problem is None

    async with AsyncSession(engine) as session:
        entries = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
        head = (await session.exec(select(AuditChainHead))).one()
    assert [e.id for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    assert len({e.entry_hash for e in entries}) == 5
    assert (head.last_id, head.last_hash) == (5, entries[-1].entry_hash)
    assert json.loads(entries[2].detail) == {"reason": "review", "n": 2, "注": "中文"}


async def test_append_leaves_commit_to_the_caller(engine: AsyncEngine) -> None:
    await _append(engine, 2)
    async with AsyncSession(engine) as session:
        entry = await append(
            session,
            county_id="330102",
            actor="u-2",
            action="case.updated",
            record_type="case",
            record_id=42,
        )
        assert entry.id == 3
        await session.rollback()

    async with AsyncSession(engine) as session:
        ids = (await session.exec(select(AuditEntry.id))).all()
        head = (await session.exec(select(AuditChainHead))).one()
    assert sorted(ids) == [1, 2]
    assert head.last_id == 2
    assert (await _verify(engine)).ok


async def test_foreign_timezones_hash_the_same_after_a_round_trip(engine: AsyncEngine) -> None:
    beijing = timezone(timedelta(hours=8))
    at = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=beijing)
    async with AsyncSession(engine) as session:
        entry = await append(
            session,
            county_id="330102",
            actor="u-1",
            action="report.submitted",
            record_type="report",
            record_id="r-1",
            at=at,
        )
        assert entry.at == at.astimezone(UTC)
        await session.commit()
    async with AsyncSession(engine) as session:
        stored = (await session.exec(select(AuditEntry.at))).one()
    # SQLite hands back naive datetimes: the stored instant must be the UTC one.
    assert (stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored) == at
    assert (await _verify(engine)).ok


async def test_edited_detail_is_reported_by_id(engine: AsyncEngine) -> None:
    await _append(engine, 5)
    await _sql(engine, """UPDATE audit_entry SET detail = '{"reason":"none"}' WHERE id = 3""")

    result = await _verify(engine)
    assert not result.ok
    assert result.first_bad_id == 3
    assert result.entries_checked == 2
    assert result.problem is not None and "entry_hash" in result.problem


async def test_rewritten_entry_with_recomputed_hash_breaks_the_next_link(
    engine: AsyncEngine,
) -> None:
    await _append(engine, 5)
    async with AsyncSession(engine) as session:
        forged = (await session.exec(select(AuditEntry).where(col(AuditEntry.id) == 3))).one()
        forged.actor = "someone-else"
        forged.entry_hash = entry_hash(
            id=forged.id,
            county_id=forged.county_id,
            at=forged.at,
            actor=forged.actor,
            action=forged.action,
            record_type=forged.record_type,
            record_id=forged.record_id,
            detail=forged.detail,
            prev_hash=forged.prev_hash,
        )
        session.add(forged)
        await session.commit()

    result = await _verify(engine)
    assert not result.ok
    assert result.first_bad_id == 4
    assert result.problem is not None and "prev_hash" in result.problem


async def test_deleted_middle_entry_is_detected(engine: AsyncEngine) -> None:
    await _append(engine, 5)
    await _sql(engine, "DELETE FROM audit_entry WHERE id = 3")

    result = await _verify(engine)
    assert not result.ok
    assert result.first_bad_id == 3
    assert result.problem is not None and "missing" in result.problem


async def test_deleted_first_entry_is_detected(engine: AsyncEngine) -> None:
    await _append(engine, 3)
    await _sql(engine, "DELETE FROM audit_entry WHERE id = 1")

    result = await _verify(engine)
    assert (result.ok, result.first_bad_id, result.entries_checked) == (False, 1, 0)


async def test_deleted_last_entry_is_revealed_by_the_head(engine: AsyncEngine) -> None:
    await _append(engine, 5)
    await _sql(engine, "DELETE FROM audit_entry WHERE id = 5")

    result = await _verify(engine)
    assert not result.ok
    assert result.first_bad_id == 5
    assert result.entries_checked == 4


async def test_tampered_head_is_detected(engine: AsyncEngine) -> None:
    await _append(engine, 3)
    await _sql(engine, "UPDATE audit_chain_head SET last_id = 2")

    result = await _verify(engine)
    assert (result.ok, result.first_bad_id) == (False, 2)
    assert result.problem is not None and "head" in result.problem


async def test_entry_appended_around_the_head_is_detected(engine: AsyncEngine) -> None:
    await _append(engine, 2)
    await _sql(
        engine,
        "INSERT INTO audit_entry (id, county_id, at, actor, action, record_type, record_id,"
        " detail, prev_hash, entry_hash) VALUES (3, 'c', '2025-01-01 00:00:00.000000', 'x',"
        " 'y', 'z', 'r', '{}', 'p', 'h')",
    )

    result = await _verify(engine)
    assert (result.ok, result.first_bad_id, result.entries_checked) == (False, 3, 2)


async def test_missing_head_row_is_detected(engine: AsyncEngine) -> None:
    await _append(engine, 2)
    await _sql(engine, "DELETE FROM audit_chain_head")

    result = await _verify(engine)
    assert (result.ok, result.first_bad_id) == (False, 1)
    assert result.problem is not None and "head" in result.problem


async def test_verify_streams_in_chunks(engine: AsyncEngine) -> None:
    await _append(engine, 10)
    result = await _verify(engine, chunk_size=3)
    assert (result.ok, result.entries_checked) == (True, 10)

    # A gap exactly on a chunk boundary must still be seen.
    await _sql(engine, "DELETE FROM audit_entry WHERE id = 7")
    result = await _verify(engine, chunk_size=3)
    assert (result.ok, result.first_bad_id, result.entries_checked) == (False, 7, 6)


async def test_empty_log_verifies(engine: AsyncEngine) -> None:
    result = await _verify(engine)
    assert (result.ok, result.entries_checked) == (True, 0)


async def test_concurrent_appends_keep_a_valid_chain(engine: AsyncEngine) -> None:
    writers, each = 5, 8
    await asyncio.gather(*(_append(engine, each, actor=f"u-{w}") for w in range(writers)))

    result = await _verify(engine)
    assert result.ok, result
    assert result.entries_checked == writers * each
    async with AsyncSession(engine) as session:
        actors = (await session.exec(select(AuditEntry.actor))).all()
    assert sorted(set(actors)) == [f"u-{w}" for w in range(writers)]


async def test_reporter_identity_is_refused_in_detail(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        with pytest.raises(ValueError, match="phone"):
            await append(
                session,
                county_id="330102",
                actor="u-1",
                action="report.submitted",
                record_type="report",
                record_id="r-1",
                detail={"channel": "letter", "contacts": [{"phone": "13800000000"}]},
            )
        await session.rollback()
    assert (await _verify(engine)).entries_checked == 0


async def test_migration_helper_creates_working_tables(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    sync_engine = create_engine(f"sqlite:///{path}")
    with sync_engine.begin() as conn:
        audit_table_ddl(Operations(MigrationContext.configure(conn)))
        inspector = inspect(conn)
        assert set(inspector.get_table_names()) == {"audit_entry", "audit_chain_head"}
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("audit_entry")}
        assert indexes == {
            "ix_audit_entry_record": ["record_type", "record_id"],
            "ix_audit_entry_county_at": ["county_id", "at"],
        }
        head = conn.execute(text("SELECT chain, last_id, last_hash FROM audit_chain_head")).all()
        assert head == [("main", 0, GENESIS_HASH)]
    sync_engine.dispose()

    eng = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await _append(eng, 3)
        result = await _verify(eng)
        assert (result.ok, result.entries_checked) == (True, 3)
    finally:
        await eng.dispose()
