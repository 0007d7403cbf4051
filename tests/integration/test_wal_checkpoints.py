"""SQLite's log folded back by a checkpointer of its own, not inside the writers' commits."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError
from sqlalchemy import text

from services.runtime.db import Database
from services.runtime.host import ServiceHost
from services.runtime.settings import PlatformSettings, Settings
from services.runtime.wal import WalCheckpointer


async def _database(tmp_path: Path, *, wal_autocheckpoint_pages: int) -> Database:
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'wal.sqlite3'}",
        wal_autocheckpoint_pages=wal_autocheckpoint_pages,
    )
    async with database.transaction() as session:
        await (await session.connection()).execute(
            text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
        )
    return database


async def _write(database: Database, start: int, count: int) -> None:
    async with database.transaction() as session:
        await (await session.connection()).execute(
            text("INSERT INTO note (id, body) VALUES (:id, :body)"),
            [{"id": start + n, "body": "x" * 2000} for n in range(count)],
        )


def _log_frames(path: Path) -> int:
    """Frames in the log now (the PASSIVE checkpoint that reads it folds them back too)."""
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


async def test_the_writers_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    database = await _database(tmp_path, wal_autocheckpoint_pages=100_000)
    checkpointer = WalCheckpointer(tmp_path / "wal.sqlite3", interval=60)
    try:
        for batch in range(10):
            await _write(database, batch * 100, 100)
        first = await checkpointer.checkpoint()
        # ≈ 500 pages written and no commit checkpointed them (SQLite's own threshold is
        # 1,000 pages, so the pages are counted, not the threshold's effect).
        assert first.frames > 400
        assert first.checkpointed == first.frames
        # With everything in the file, the next writer starts the log from the top again.
        await _write(database, 10_000, 1)
        again = await checkpointer.checkpoint()
        assert 0 < again.frames < 10
        assert again.checkpointed == again.frames
    finally:
        await checkpointer.close()
        await database.dispose()


@pytest.mark.parametrize(("pages", "folded_back"), [(1_000, True), (100_000, False)])
async def test_a_commit_still_checkpoints_at_the_safety_net(
    tmp_path: Path, pages: int, folded_back: bool
) -> None:
    database = await _database(tmp_path, wal_autocheckpoint_pages=pages)
    try:
        for batch in range(30):
            await _write(database, batch * 100, 100)
        # ≈ 1,500 pages written: past a threshold of 1,000 a commit folded the log back
        # itself and the log started again; under 100,000 the log holds them all.
        assert (_log_frames(tmp_path / "wal.sqlite3") < 1_000) is folded_back
    finally:
        await database.dispose()


async def test_writes_beside_the_checkpoints_lose_nothing(tmp_path: Path) -> None:
    database = await _database(tmp_path, wal_autocheckpoint_pages=100_000)
    checkpointer = WalCheckpointer(tmp_path / "wal.sqlite3", interval=0.001)
    running = asyncio.create_task(checkpointer.run())
    try:
        for batch in range(40):
            await _write(database, batch * 25, 25)
            await asyncio.sleep(0)
    finally:
        checkpointer.stop()
        await running
    async with database.transaction() as session:
        count = (
            await (await session.connection()).execute(text("SELECT count(*) FROM note"))
        ).scalar_one()
        check = (
            await (await session.connection()).execute(text("PRAGMA integrity_check"))
        ).scalar_one()
    await database.dispose()
    assert (count, check) == (1_000, "ok")
    # Every page written is in the database file: a copy without the log has them all.
    with sqlite3.connect(tmp_path / "wal.sqlite3") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "wal.sqlite3").stat().st_size > 1_000 * 2000


async def test_a_missing_database_is_not_created_by_the_checkpointer(tmp_path: Path) -> None:
    told: list[int | None] = []
    checkpointer = WalCheckpointer(
        tmp_path / "absent.sqlite3", interval=0.001, on_checkpoint=told.append
    )
    with pytest.raises(sqlite3.OperationalError):
        await checkpointer.checkpoint()
    # run() logs a failed pass, says so, and goes on until stopped.
    running = asyncio.create_task(checkpointer.run())
    await asyncio.sleep(0.05)
    checkpointer.stop()
    await running
    assert not (tmp_path / "absent.sqlite3").exists()
    assert len(told) >= 2 and set(told) == {None}


async def test_each_pass_reports_the_pages_it_left_and_the_service_shows_them(
    tmp_path: Path,
) -> None:
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    assert host.wal is not None and host.database.sqlite_path is not None
    try:
        async with host.database.transaction() as session:
            await (await session.connection()).execute(
                text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
            )
        await _write(host.database, 0, 200)
        exposition = generate_latest(host.metrics.registry).decode()
        assert 'xiezuo_sqlite_wal_frames{service="cases"} 0.0' in exposition
        assert 'xiezuo_sqlite_wal_checkpoint_failures_total{service="cases"} 0.0' in exposition
        # A reader holding its snapshot keeps the pages it may still read in the log.
        with sqlite3.connect(host.database.sqlite_path) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM note").fetchone()
            await _write(host.database, 1_000, 200)
            host.wal.interval = 0.001
            running = asyncio.create_task(host.wal.run())
            await asyncio.sleep(0.05)
            host.wal.stop()
            await running
            held = _gauge(host, "xiezuo_sqlite_wal_frames")
            reader.execute("COMMIT")
        assert held > 50
        # Once the reader is done, the next pass copies them back.
        again = WalCheckpointer(
            host.database.sqlite_path, interval=0.001, on_checkpoint=host.metrics.wal_checkpointed
        )
        running = asyncio.create_task(again.run())
        await asyncio.sleep(0.05)
        again.stop()
        await running
        assert _gauge(host, "xiezuo_sqlite_wal_frames") == 0
    finally:
        await host.database.dispose()


def _gauge(host: ServiceHost, name: str) -> float:
    value = host.metrics.registry.get_sample_value(name, {"service": "cases"})
    assert value is not None
    return value


async def test_a_service_on_sqlite_checkpoints_beside_its_writers(tmp_path: Path) -> None:
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    try:
        assert host.wal is not None
        assert host.wal.path == host.database.sqlite_path
        assert host.wal.interval == 1.0
        async with host.database.transaction() as session:
            pages = (
                await (await session.connection()).execute(text("PRAGMA wal_autocheckpoint"))
            ).scalar_one()
        assert pages == 16_384
    finally:
        await host.database.dispose()


async def test_a_zero_interval_leaves_the_log_to_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_SQLITE_WAL_CHECKPOINT_SECONDS", "0")
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    try:
        assert host.wal is None
        async with host.database.transaction() as session:
            pages = (
                await (await session.connection()).execute(text("PRAGMA wal_autocheckpoint"))
            ).scalar_one()
        assert pages == 1_000
    finally:
        await host.database.dispose()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("XIEZUO_SQLITE_WAL_CHECKPOINT_SECONDS", "-1"),
        ("XIEZUO_SQLITE_WAL_AUTOCHECKPOINT_PAGES", "10"),
    ],
)
def test_a_wal_setting_that_cannot_be_is_refused_at_start(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        PlatformSettings()
