"""SQLite through aiosqlite, with as few trips to the connection's thread as it allows.

SQLAlchemy's stock aiosqlite adapter makes every statement four trips between the event loop
and the connection's worker thread (make a cursor, execute, fetch all, close), each a queue
put, a `call_soon_threadsafe` wake-up and a greenlet switch, about a hundred microseconds of
the loop's time each, while SQLite answers most of our statements in a few. Here:

- a statement (or one with several parameter sets) runs on the loop's own thread when SQLite
  can run it without waiting for a lock, and otherwise in one trip to the worker, which waits
  for the lock as before. For that the connection's busy timeout rests at 0 (refuse at once),
  and a trip to the worker sets the connection's patience for its statement and puts 0 back;
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


def _run_patiently(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool, patience: int
) -> tuple[_Outcome, int]:
    """On the worker: the statement allowed to wait `patience` ms for a lock, then back to 0.

    Also returns the patience from now on: a PRAGMA may have set a new busy timeout.
    """
    connection.execute(f"PRAGMA busy_timeout = {int(patience)}")
    try:
        return _run(connection, operation, parameters, many), _patience_after(
            connection, operation, patience
        )
    finally:
        connection.execute("PRAGMA busy_timeout = 0")


def _patience_after(connection: sqlite3.Connection, operation: str, patience: int) -> int:
    if not _is_pragma(operation):
        return patience
    (current,) = connection.execute("PRAGMA busy_timeout").fetchone()
    return int(current)


def _at_rest(connection: sqlite3.Connection) -> int:
    """On the worker, once per connection: its busy timeout (the patience), now set to 0."""
    (patience,) = connection.execute("PRAGMA busy_timeout").fetchone()
    connection.execute("PRAGMA busy_timeout = 0")
    return int(patience)


def _is_pragma(operation: str) -> bool:
    return operation.lstrip()[:6].upper() == "PRAGMA"


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
        the loop about a hundred. So each statement is tried on the loop's own thread, where
        the connection's busy timeout is 0: if another connection holds the lock it needs,
        SQLite refuses at once (having changed nothing) and the statement goes to the worker
        thread, which waits for the lock as long as the connection's patience allows, as
        before. None then. With several parameter sets, a refusal after some of them were
        applied cannot be sent on (they would be applied twice) and is raised as the lock
        error it is; in WAL mode it does not happen, since only the first write of a
        transaction takes a lock.
        """
        driver = self._connection._connection
        if (
            driver is None
            or self._adapt_connection._execute_mutex.locked()
            # A PRAGMA may set the very busy timeout kept as the connection's patience.
            or _is_pragma(operation)
        ):
            return None
        changes = driver.total_changes
        try:
            return _run(driver, operation, parameters, many)
        except sqlite3.OperationalError as error:
            if _refused_for_a_lock(error) and driver.total_changes == changes:
                return None
            self._adapt_connection._handle_exception(error)
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _execute_trip(self, operation: str, parameters: Any, many: bool) -> _Outcome:
        adapted = self._adapt_connection
        assert isinstance(adapted, OneTripConnection)
        async with adapted._execute_mutex:
            driver = self._connection
            # `_conn` raises "no active connection" once closed, as the stock cursor would.
            result: _Outcome
            result, adapted.patience = await driver._execute(
                _run_patiently, driver._conn, operation, parameters, many, adapted.patience
            )
            return result


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """aiosqlite's adapted connection, handing out one-trip cursors.

    `patience`: how long (ms) a statement sent to the worker may wait for a lock, the busy
    timeout the connection was opened or set with; SQLite's own stays 0 between statements.
    Commit and rollback run with 0: in WAL mode neither waits for a lock (the transaction's
    first write took the only one they need).
    """

    __slots__ = ("patience",)
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any, patience: int) -> None:
        super().__init__(dbapi, connection)
        self.patience = patience

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
        opened = await_(connection)
        patience: int = await_(opened._execute(_at_rest, opened._conn))
        return OneTripConnection(self, opened, patience)


def one_trip_dbapi() -> OneTripDBAPI:
    """A fresh DBAPI module object for one engine."""
    return OneTripDBAPI(aiosqlite, sqlite3)
