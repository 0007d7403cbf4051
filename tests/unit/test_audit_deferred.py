"""Deferred audit appends: the chain one transaction writes at once is the one-by-one chain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.audit import (
    GENESIS_HASH,
    AuditCountyHead,
    AuditEntry,
    append,
    audit_tables,
    deferred_appends,
    verify,
)
from services.runtime.audit_key import AuditKey
from services.runtime.db import AUDIT_KEY

COUNTY, OTHER = "330102", "330103"
AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def key() -> AuditKey:
    return AuditKey.generate()


async def _engine(path: Path) -> AsyncEngine:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=audit_tables()))
        await conn.execute(
            text("INSERT INTO audit_chain_head VALUES ('main', 0, :h)"), {"h": GENESIS_HASH}
        )
    return engine


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two empty audit logs: one appended to one by one, the other deferred."""
    one, other = await _engine(tmp_path / "one.db"), await _engine(tmp_path / "other.db")
    yield one, other
    await one.dispose()
    await other.dispose()


@contextmanager
def statements_on(engine: AsyncEngine) -> Iterator[list[str]]:
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def _append_entry(session: AsyncSession, n: int, county: str) -> None:
    await append(
        session,
        county_id=county,
        actor=f"u-{n % 3}",
        action="clue.registered",
        record_type="clue",
        record_id=f"clue-{n}",
        detail={"zone_id": f"z-{n % 2}", "n": n, "注": "中文"},
        at=AT + timedelta(seconds=n),
    )


# Two transactions, each auditing in two counties (the second continues both chains).
SCRIPT = [[(n, (COUNTY, OTHER)[n % 3 == 0]) for n in range(0, 7)], [(n, COUNTY) for n in (7, 8)]]


async def _stored(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with AsyncSession(engine) as session:
        entries = (
            await session.exec(
                select(AuditEntry).order_by(col(AuditEntry.county_id), col(AuditEntry.seq))
            )
        ).all()
        heads = (await session.exec(select(AuditCountyHead))).all()
    return [
        (e.county_id, e.seq, e.at, e.actor, e.detail, e.prev_hash, e.entry_hash) for e in entries
    ] + sorted((h.county_id, h.last_seq, h.last_hash) for h in heads)


async def test_deferred_appends_write_the_same_chain_as_one_by_one(
    engines: tuple[AsyncEngine, AsyncEngine], key: AuditKey
) -> None:
    one_by_one, deferred = engines
    for transaction in SCRIPT:
        async with AsyncSession(one_by_one, info={AUDIT_KEY: key}) as session:
            for n, county in transaction:
                await _append_entry(session, n, county)
            await session.commit()
        async with AsyncSession(deferred, info={AUDIT_KEY: key}) as session:
            async with deferred_appends(session):
                for n, county in transaction:
                    await _append_entry(session, n, county)
            await session.commit()

    assert await _stored(deferred) == await _stored(one_by_one)
    async with AsyncSession(deferred) as session:
        result = await verify(session, key)
    assert result.ok, result
    assert result.entries_checked == 9


async def test_deferred_appends_cost_one_lock_one_insert_and_one_head_move_per_county(
    engines: tuple[AsyncEngine, AsyncEngine], key: AuditKey
) -> None:
    engine, _ = engines
    async with AsyncSession(engine, info={AUDIT_KEY: key}) as session:
        await _append_entry(session, 0, COUNTY)  # the head row exists from here on
        await session.commit()
    with statements_on(engine) as sent:
        async with AsyncSession(engine, info={AUDIT_KEY: key}) as session:
            async with deferred_appends(session):
                for n in range(1, 31):
                    await _append_entry(session, n, COUNTY)
            await session.commit()
    # UPDATE ... RETURNING (lock and read), INSERT of 30 rows, UPDATE of the head.
    assert len(sent) == 3, sent
    async with AsyncSession(engine) as session:
        assert (await verify(session, key)).entries_checked == 31


async def test_a_rewound_part_leaves_no_entry_and_no_gap(
    engines: tuple[AsyncEngine, AsyncEngine], key: AuditKey
) -> None:
    engine, _ = engines
    async with AsyncSession(engine, info={AUDIT_KEY: key}) as session:
        async with deferred_appends(session) as audited:
            await _append_entry(session, 1, COUNTY)
            before = audited.mark()
            async with session.begin_nested() as savepoint:
                await _append_entry(session, 2, COUNTY)
                await _append_entry(session, 3, OTHER)  # locks OTHER's head inside it
                await savepoint.rollback()
            audited.rewind(before)
            await _append_entry(session, 4, OTHER)
            await _append_entry(session, 5, COUNTY)
        await session.commit()

    async with AsyncSession(engine) as session:
        result = await verify(session, key)
        stored = (await session.exec(select(AuditEntry.record_id, AuditEntry.seq))).all()
    assert result.ok, result
    assert sorted(stored) == [("clue-1", 1), ("clue-4", 1), ("clue-5", 2)]


async def test_leaving_by_an_exception_writes_nothing(
    engines: tuple[AsyncEngine, AsyncEngine], key: AuditKey
) -> None:
    engine, _ = engines
    async with AsyncSession(engine, info={AUDIT_KEY: key}) as session:
        with pytest.raises(RuntimeError, match="handler"):
            async with deferred_appends(session):
                await _append_entry(session, 1, COUNTY)
                raise RuntimeError("handler failed")
        # Appends after the block are immediate again.
        await _append_entry(session, 2, COUNTY)
        await session.commit()
    async with AsyncSession(engine) as session:
        stored = (await session.exec(select(AuditEntry.record_id, AuditEntry.seq))).all()
        assert (await verify(session, key)).ok
    assert stored == [("clue-2", 1)]
