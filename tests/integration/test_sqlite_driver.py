"""SQLite statements run on the loop or in one trip to aiosqlite's thread; results as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlmodel import select

from services.runtime.db import Database


class _Base(DeclarativeBase):
    """A metadata of this test's own, apart from the services' tables."""


class _Note(_Base):
    __tablename__ = "driver_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(unique=True)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every function sent to an aiosqlite worker thread, in order."""
    sent: list[str] = []
    original: Callable[..., Any] = aiosqlite.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


async def _bodies(database: Database) -> list[str]:
    async with database.session() as session:
        return list((await session.exec(select(_Note.body))).all())


async def _fail_on_a_repeat(database: Database, *, new: str, repeated: str) -> None:
    """A unit of work that writes `new`, then a note that exists already, and fails."""
    with pytest.raises(exc.IntegrityError):
        async with database.transaction() as session:
            session.add(_Note(body=new))
            await session.flush()
            session.add(_Note(body=repeated))
            await session.flush()


async def test_statements_run_on_the_loop_and_executemany_in_one_trip(
    database: Database, trips: list[str]
) -> None:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # the pool's first checkout settles here
        await connection.rollback()
        trips.clear()
        async with connection.begin():
            await connection.execute(text("INSERT INTO driver_note (body) VALUES ('a')"))
            await connection.exec_driver_sql(
                "INSERT INTO driver_note (body) VALUES (?)", [("b",), ("c",)]
            )
            rows = (await connection.execute(text("SELECT body FROM driver_note"))).all()
            done = await connection.execute(text("UPDATE driver_note SET body = body || '!'"))
        # The statements found no lock taken and ran on the loop; the commit went to the
        # worker thread: one trip (the stock adapter took fourteen).
        assert trips == ["commit"]
    assert sorted(row.body for row in rows) == ["a", "b", "c"]
    assert done.rowcount == 3


@pytest.mark.parametrize("bodies", [["second"], ["second", "third"]], ids=["execute", "many"])
async def test_a_statement_that_finds_the_lock_taken_waits_for_it_on_the_worker(
    database: Database, trips: list[str], bodies: list[str]
) -> None:
    async with database.engine.connect() as one, database.engine.connect() as other:
        # Two pooled connections, so the second writer below needs no new one (a connect
        # sends its PRAGMAs to the worker thread too).
        await one.execute(text("SELECT 1"))
        await other.execute(text("SELECT 1"))
    async with database.engine.connect() as holder:
        await holder.begin()
        await holder.execute(text("INSERT INTO driver_note (body) VALUES ('first')"))
        trips.clear()

        async def second() -> None:
            async with database.engine.begin() as connection:
                await connection.exec_driver_sql(
                    "INSERT INTO driver_note (body) VALUES (?)", [(body,) for body in bodies]
                )

        waiting = asyncio.create_task(second())
        # Refused at once on the loop, the INSERT now waits on the worker for the lock.
        while trips != ["_run_patiently"]:
            # A writer that gave up instead of waiting fails the test here, with its error.
            assert not waiting.done(), waiting.exception()
            await asyncio.sleep(0.01)
        await holder.commit()
        await asyncio.wait_for(waiting, timeout=30)
    # Each row once: the refused attempt on the loop had written nothing.
    assert sorted(await _bodies(database)) == ["first", *bodies]
    assert trips[-1] == "commit"


async def test_results_read_as_the_stock_adapter_gives_them(database: Database) -> None:
    async with database.engine.begin() as connection:
        added = await connection.execute(text("INSERT INTO driver_note (body) VALUES ('x')"))
        assert added.lastrowid == 1
        assert added.rowcount == 1
        empty = await connection.execute(text("SELECT id, body FROM driver_note WHERE id = -1"))
        # A query without rows still describes its columns.
        assert list(empty.keys()) == ["id", "body"]
        assert empty.all() == []
        returned = await connection.execute(
            text("INSERT INTO driver_note (body) VALUES ('y') RETURNING id, body")
        )
        assert [tuple(row) for row in returned] == [(2, "y")]
        gone = await connection.execute(text("DELETE FROM driver_note WHERE body = 'nobody'"))
        assert gone.rowcount == 0


async def test_orm_keys_and_errors(database: Database) -> None:
    async with database.transaction() as session:
        note = _Note(body="first")
        session.add(note)
        await session.flush()
        # The ORM learns an autoincrement key from the cursor's lastrowid.
        assert note.id == 1
    await _fail_on_a_repeat(database, new="second", repeated="first")
    # The failed unit of work left nothing, and the pooled connection still works.
    assert await _bodies(database) == ["first"]


async def test_commit_and_reset_make_no_trip_outside_a_transaction(
    database: Database, trips: list[str]
) -> None:
    async with database.transaction() as session:
        await session.exec(select(_Note.body))  # the pool's first checkout settles here
    trips.clear()
    async with database.transaction() as session:
        session.add(_Note(body="kept"))
    # The INSERT ran on the loop; the commit is the one trip, and the pool's reset finds
    # no transaction to roll back.
    assert trips == ["commit"]
    trips.clear()
    async with database.transaction() as session:
        await session.exec(select(_Note.body))
    # A unit of work that only read leaves SQLite outside any transaction: nothing to end.
    assert trips == []
    trips.clear()
    await _fail_on_a_repeat(database, new="other", repeated="kept")
    # A failed write still rolls back on the worker thread, and undoes what it wrote.
    assert trips[-1] == "rollback"
    assert await _bodies(database) == ["kept"]


async def _busy_timeout(connection: Any) -> tuple[int, int]:
    """SQLite's busy timeout on `connection`'s driver connection, and the adapter's patience."""
    adapted = (await connection.get_raw_connection()).dbapi_connection
    (resting,) = adapted._connection._connection.execute("PRAGMA busy_timeout").fetchone()
    return resting, adapted.patience


async def test_the_busy_timeout_rests_at_zero_and_is_kept_as_the_connections_patience(
    database: Database, trips: list[str]
) -> None:
    async with database.engine.connect() as connection:
        # Opened with the Database's 30 s; SQLite refuses at once between statements.
        assert await _busy_timeout(connection) == (0, 30_000)
        await connection.exec_driver_sql("PRAGMA busy_timeout = 250")
        assert await _busy_timeout(connection) == (0, 250)
        await connection.execute(text("INSERT INTO driver_note (body) VALUES ('a')"))
        await connection.commit()
        assert await _busy_timeout(connection) == (0, 250)
    # A PRAGMA went to the worker (where the timeout was set and put back), the INSERT ran
    # on the loop at 0, the commit on the worker.
    assert trips[-2:] == ["_run_patiently", "commit"]


async def test_a_statement_gives_up_after_the_connections_patience(
    database: Database, trips: list[str]
) -> None:
    async with database.engine.connect() as holder, database.engine.connect() as waiter:
        await waiter.exec_driver_sql("PRAGMA busy_timeout = 200")
        await waiter.commit()
        await holder.begin()
        await holder.execute(text("INSERT INTO driver_note (body) VALUES ('first')"))
        trips.clear()
        # The lock is never given up: after 200 ms, not 30 s, SQLite reports it as locked.
        with pytest.raises(exc.OperationalError, match="locked"):
            async with waiter.begin():
                await asyncio.wait_for(
                    waiter.execute(text("INSERT INTO driver_note (body) VALUES ('second')")),
                    timeout=20,
                )
        assert trips[0] == "_run_patiently"
        assert await _busy_timeout(waiter) == (0, 200)
        await holder.commit()
    assert await _bodies(database) == ["first"]
