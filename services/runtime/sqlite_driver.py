"""SQLite through aiosqlite, with as few trips to the connection's thread as it allows.

SQLAlchemy's stock aiosqlite adapter makes every statement four trips between the event loop
and the connection's worker thread (make a cursor, execute, fetch all, close), each a queue
put, a `call_soon_threadsafe` wake-up and a greenlet switch, about a hundred microseconds of
the loop's time each, while SQLite answers most of our statements in a few. Here:

- a statement (or one with several parameter sets) runs on the loop's own thread when SQLite
  can run it without waiting for a lock, and otherwise in one trip to the worker, which waits
  for the lock as before;
- commit stays on the worker (it waits for the disk), and commit or rollback make no trip at
  all when SQLite has no transaction open (sqlite3 would do nothing).

It reaches into aiosqlite's `_execute`, `_conn` and `_connection`, as SQLAlchemy's own adapter
does with `_tx`; pyproject pins aiosqlite to the minor version this was written against, and
tests/integration/test_sqlite_driver.py checks the trips, the lock wait and the results.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# What one statement left behind: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """The whole statement on the connection's own thread."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _refused_for_a_lock(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: the lock was taken, so nothing was done."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds no driver cursor between calls: each statement is one trip."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    # Nothing is left open on the worker thread, so there is nothing to close there.
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # The parent's __init__ would make a driver cursor (a trip); none is needed here.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._trip(operation, () if parameters is None else parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        # A list, not an iterator: a refused attempt on the loop must leave it for the worker.
        self._trip(operation, list(seq_of_parameters), many=True)

    def _trip(self, operation: str, parameters: Any, *, many: bool) -> None:
        # Awaited although it never suspends: SQLAlchemy's async engine checks that a
        # statement awaited something, and the greenlet switch there costs little.
        outcome = await_(self._on_loop(operation, parameters, many))
        if outcome is None:
            try:
                outcome = await_(self._execute_trip(operation, parameters, many))
            except Exception as error:
                self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _on_loop(self, operation: str, parameters: Any, many: bool) -> _Outcome | None:
        """The statement run right here if SQLite can run it without waiting for a lock.

        A statement takes SQLite microseconds; the trip to the worker thread and back costs
        the loop about a hundred. So each statement is tried on the loop's own thread with no
        busy wait: if another connection holds the lock it needs, SQLite refuses at once
        (having changed nothing) and the statement goes to the worker thread, which waits for
        the lock as long as the connection's busy timeout allows, as before. None then.
        With several parameter sets, a refusal after some of them were applied cannot be
        sent on (they would be applied twice) and is raised as the lock error it is; in WAL
        mode it does not happen, since only the first write of a transaction takes a lock.
        """
        driver = self._connection._connection
        if (
            driver is None
            or self._adapt_connection._execute_mutex.locked()
            # A PRAGMA may set the very busy timeout this path lowers and restores.
            or operation.lstrip()[:6].upper() == "PRAGMA"
        ):
            return None
        (patience,) = driver.execute("PRAGMA busy_timeout").fetchone()
        changes = driver.total_changes
        driver.execute("PRAGMA busy_timeout = 0")
        try:
            return _run(driver, operation, parameters, many)
        except sqlite3.OperationalError as error:
            if _refused_for_a_lock(error) and driver.total_changes == changes:
                return None
            self._adapt_connection._handle_exception(error)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        finally:
            driver.execute(f"PRAGMA busy_timeout = {int(patience)}")

    async def _execute_trip(self, operation: str, parameters: Any, many: bool) -> _Outcome:
        async with self._adapt_connection._execute_mutex:
            driver = self._connection
            # `_conn` raises "no active connection" once closed, as the stock cursor would.
            result: _Outcome = await driver._execute(
                _run, driver._conn, operation, parameters, many
            )
            return result


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """aiosqlite's adapted connection, handing out one-trip cursors."""

    __slots__ = ()
    _cursor_cls = OneTripCursor

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def _in_transaction(self) -> bool:
        """Whether SQLite has a transaction open on this connection.

        Outside one, sqlite3's own commit() and rollback() do nothing, so asking the worker
        thread to run them is a trip for nothing: the pool's reset after every commit, and
        the commit of a unit of work that only read, were one each. Reading the flag from the
        loop is safe because SQLAlchemy runs nothing else on the connection meanwhile.
        """
        driver = self._connection._connection
        # Closed: the parent reports it as the stock adapter would.
        return driver is None or driver.in_transaction


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy is given for `sqlite+aiosqlite` URLs (its `module=`)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        # Statements also run on the event loop's thread (OneTripCursor._on_loop), never at
        # the same time as on the worker's: SQLAlchemy runs one thing at a time per connection.
        connection = self.aiosqlite.connect(*arg, **{**kw, "check_same_thread": False})
        # As SQLAlchemy does: a connection left unclosed must not keep the process alive.
        connection._thread.daemon = True
        return OneTripConnection(self, await_(connection))


def one_trip_dbapi() -> OneTripDBAPI:
    """A fresh DBAPI module object for one engine."""
    return OneTripDBAPI(aiosqlite, sqlite3)
