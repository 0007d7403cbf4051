"""Two replicas' deadline scanners on one PostgreSQL database: their notices never interleave."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from services.cases.store.deadline_scan import DeadlineScanner
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.localstack import PostgresCluster
from services.runtime.migrate import upgrade_async
from tests.integration.helpers import WAIT_SECONDS, register_case_clue

pytestmark = pytest.mark.postgres

# "z" clues: registered first, warned from 03-28 (due 04-02). "a" clues: warned from 04-07.
EARLY, LATE = datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 3, 12, 9, tzinfo=UTC)
EARLY_WARNED, BOTH_WARNED = (
    datetime(2026, 3, 30, 9, tzinfo=UTC),
    datetime(2026, 4, 8, 9, tzinfo=UTC),
)
EACH = 5
APPROACHING = "xiezuo.cases.deadline_approaching.v1"


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _lock_waiters(url: str) -> int:
    connection = await asyncpg.connect(_plain(url))
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    finally:
        await connection.close()


async def _until_waiters(url: str, count: int) -> None:
    until = time.monotonic() + WAIT_SECONDS
    while await _lock_waiters(url) < count:
        assert time.monotonic() < until, f"never saw {count} sessions waiting on a lock"
        await asyncio.sleep(0.05)


async def test_two_scanners_notice_transactions_do_not_interleave_their_outbox_rows(
    postgres: PostgresCluster,
) -> None:
    url = await postgres.acreate_database(f"scanners_{uuid.uuid4().hex[:10]}")
    await upgrade_async("cases", url)
    setup = Database(url, audit_key=AuditKey.generate())
    for index in range(EACH):
        await register_case_clue(setup, f"z-{index}", at=EARLY)
        await register_case_clue(setup, f"a-{index}", at=LATE)
    # Two replicas: each its own engine.
    first, second = (Database(url, audit_key=setup.audit_key) for _ in range(2))
    # A workflow command holds the third "z" deadline, so the first scanner stops midway
    # through its chunk with two notices written.
    holder = await asyncpg.connect(_plain(url))
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM case_deadline WHERE deadline_id = $1 FOR UPDATE", "z-2:disposal:1"
        )
        early = asyncio.create_task(DeadlineScanner(first).scan(now=EARLY_WARNED))
        await _until_waiters(url, 1)
        # The second replica scans later: the "a" deadlines, and the "z" ones not yet noticed.
        both = asyncio.create_task(DeadlineScanner(second).scan(now=BOTH_WARNED))
        await _until_waiters(url, 2)
        await held.rollback()
        results = await asyncio.wait_for(asyncio.gather(early, both), WAIT_SECONDS)
        rows = await holder.fetch(
            "SELECT payload FROM outbox_message WHERE event_type = $1 ORDER BY id", APPROACHING
        )
    finally:
        await holder.close()
        for database in (setup, first, second):
            await database.dispose()

    assert sorted(results[0].approaching) == [f"z-{i}:disposal:1" for i in range(EACH)]
    assert sorted(results[1].approaching) == [f"a-{i}:disposal:1" for i in range(EACH)]
    # In id order, each scanner's notices form one run: a relay publishing in id order then
    # publishes them in the order their transactions committed.
    groups = [json.loads(row["payload"])["deadline_id"][0] for row in rows]
    runs = [kind for index, kind in enumerate(groups) if index == 0 or groups[index - 1] != kind]
    assert runs == ["z", "a"], groups
