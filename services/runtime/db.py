"""Async database access: one engine per service, transactions as units of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.audit_key import AuditKey
from services.runtime.sqlite_driver import one_trip_dbapi

OUTBOX_WRITTEN = "xiezuo.outbox_written"
# Session.info entry holding the service's audit key: every unit of work can seal audit entries
# without each call site passing the key along.
AUDIT_KEY = "xiezuo.audit_key"


class Database:
    """A service's database: engine, sessions and commit notifications."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        audit_key: AuditKey | None = None,
        wal_autocheckpoint_pages: int | None = None,
    ) -> None:
        """`wal_autocheckpoint_pages`: SQLite's log length at which a commit checkpoints
        itself; raise it only where a `WalCheckpointer` folds the log back (services.runtime.wal).
        """
        self.url = url
        # The key is the service's, not the database's: it lives in memory, never in a row.
        self.audit_key = audit_key
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # The file behind a SQLite URL (None: PostgreSQL, or SQLite in memory).
        self.sqlite_path: Path | None = None
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                self.sqlite_path = Path(parsed.database)
                self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
            if parsed.get_driver_name() == "aiosqlite":
                # One trip to aiosqlite's thread per statement instead of four (sqlite_driver).
                kwargs["module"] = one_trip_dbapi()
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if wal_autocheckpoint_pages is not None:
                pages = int(wal_autocheckpoint_pages)

                def _autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
                    cursor = dbapi_connection.cursor()
                    cursor.execute(f"PRAGMA wal_autocheckpoint={pages}")
                    cursor.close()

                event.listen(self.engine.sync_engine, "connect", _autocheckpoint)
        self._sessions = async_sessionmaker(
            self.engine,
            class_=AsyncSession,
            expire_on_commit=False,
            info={AUDIT_KEY: audit_key} if audit_key is not None else None,
        )
        self._outbox_listeners: list[Callable[[], None]] = []

    def on_outbox_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after any commit that wrote outbox rows (wakes the relay)."""
        self._outbox_listeners.append(listener)

    def session(self) -> AsyncSession:
        """A new session; the caller manages its transaction."""
        return self._sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self._sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop(OUTBOX_WRITTEN, False):
                for listener in self._outbox_listeners:
                    listener()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the relay read while a request writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def as_utc(moment: datetime) -> datetime:
    """A UTC-aware moment: SQLite hands back naive datetimes, and everything is stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
