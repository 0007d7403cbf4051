"""Cost of the /metrics probes' database queries on PostgreSQL, with and without history.

Measures one deadline count per zone (cases: `deadlines_at_risk`) and one outbox age
(`oldest_unpublished_age`), each the mean of `--repeat` calls, first on a table of only the
open workload (500 running deadlines, one unpublished outbox row), then with `--history`
ended deadlines and published outbox rows behind them; prints the query plans. Starts its own
PostgreSQL cluster in a temp dir. Prints numbers, asserts nothing.

    .venv/bin/python bench/metrics_probes.py [--history 200000] [--repeat 50]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from services.cases.store.deadline_watch import deadlines_at_risk
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.localstack import PostgresCluster
from services.runtime.migrate import upgrade_async
from services.runtime.outbox import oldest_unpublished_age

RUNNING = 500
DEADLINE = """
INSERT INTO case_deadline (deadline_id, case_id, county_id, zone_id, kind, rule_version,
  started_at, due_at, warn_at, status, extensions, ended_at)
SELECT :prefix || g, 'case-' || g, 'c-1', 'z-' || (g % 30), 'disposal', 'bench',
  CAST(:now AS timestamptz) - interval '40 day',
  CAST(:now AS timestamptz) + (g % 50 - :shift) * interval '1 day',
  CAST(:now AS timestamptz) + (g % 50 - :shift - 3) * interval '1 day',
  :status, 0, CASE WHEN :ended THEN CAST(:now AS timestamptz) - interval '20 day' END
FROM generate_series(1, :rows) g
"""
OUTBOX = """
INSERT INTO outbox_message (event_id, event_type, topic, partition_key, source, county_id,
  zone_id, occurred_at, payload, published_at, publish_attempts, recorded_at)
SELECT :prefix || g, 'bench', 'bench', 'k', 'bench', 'c-1', 'z-1', CAST(:now AS timestamptz),
  '{}', CASE WHEN :published THEN CAST(:now AS timestamptz) END, 1,
  CAST(:now AS timestamptz) - interval '30 second'
FROM generate_series(1, :rows) g
"""


async def _mean_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()  # warm the connection pool and the plan cache
    started = time.perf_counter()
    for _ in range(repeat):
        await call()
    return (time.perf_counter() - started) / repeat * 1000


async def _fill(db: Database, now: datetime, history: int) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("TRUNCATE case_deadline"))
        await connection.execute(text("TRUNCATE outbox_message"))
        running = {"prefix": "r", "status": "open", "ended": False, "rows": RUNNING, "shift": 2}
        await connection.execute(text(DEADLINE), {"now": now, **running})
        await connection.execute(
            text(OUTBOX), {"now": now, "prefix": "p", "published": False, "rows": 1}
        )
        if history:
            ended = {"prefix": "e", "status": "met", "ended": True, "rows": history, "shift": 60}
            await connection.execute(text(DEADLINE), {"now": now, **ended})
            await connection.execute(
                text(OUTBOX), {"now": now, "prefix": "h", "published": True, "rows": history}
            )
        await connection.execute(text("ANALYZE case_deadline"))
        await connection.execute(text("ANALYZE outbox_message"))


async def _plan(db: Database, sql: str) -> str:
    async with db.engine.connect() as connection:
        rows = (await connection.execute(text(f"EXPLAIN {sql}"))).all()
    return " | ".join(str(row[0]).strip() for row in rows[:3])


async def main(history: int, repeat: int) -> None:
    cluster = PostgresCluster()
    await cluster.astart()
    try:
        url = await cluster.acreate_database(f"cases_{uuid.uuid4().hex[:6]}")
        await upgrade_async("cases", url)
        db = Database(url, audit_key=AuditKey.generate())
        now = datetime.now(UTC)
        print(f"{'history rows':>12}  {'deadlines per zone':>18}  {'outbox age':>10}")
        for rows in (0, history):
            await _fill(db, now, rows)
            deadlines = await _mean_ms(lambda: deadlines_at_risk(db, now=now), repeat)
            outbox = await _mean_ms(lambda: oldest_unpublished_age(db, now=now), repeat)
            print(f"{rows:>12,}  {deadlines:>15.2f} ms  {outbox:>7.2f} ms")
        print(
            "plan, deadlines:",
            await _plan(
                db,
                "SELECT county_id, zone_id, kind, count(*) FROM case_deadline"
                " WHERE ended_at IS NULL AND warn_at <= now() GROUP BY 1, 2, 3",
            ),
        )
        print(
            "plan, outbox age:",
            await _plan(
                db,
                "SELECT recorded_at FROM outbox_message WHERE published_at IS NULL"
                " ORDER BY id LIMIT 1",
            ),
        )
        await db.dispose()
    finally:
        await cluster.astop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.history, args.repeat))
