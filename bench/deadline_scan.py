"""Cases' deadline engine: how fast one pass sends the notices of many due deadlines.

Run: ``.venv/bin/python bench/deadline_scan.py [--deadlines N] [--postgres]`` (SQLite in a
temp dir by default).

What is measured (one JSON object is printed; timings are never asserted):
- ``first_pass``: one DeadlineScanner.scan over N running deadlines of which half are past due
  (breach) and half in their warning period (approaching): each notice is its own transaction
  (claim the row, notice row, outbox event, audit entry). Inserting the rows is not timed.
- ``idle_pass``: the next pass, when every notice has been sent (what a scan costs every
  minute on a quiet day with N deadlines on the books).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.cases.store.deadline_scan import DeadlineScanner
from services.cases.store.tables import DeadlineRow
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.localstack import PostgresCluster
from services.runtime.migrate import upgrade_async

NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)
_INSERT_BATCH = 5_000


async def _seed(database: Database, count: int) -> None:
    """N running deadlines over six zones: even ones past due, odd ones due in three days."""
    for first in range(0, count, _INSERT_BATCH):
        async with database.transaction() as session:
            for index in range(first, min(count, first + _INSERT_BATCH)):
                due = NOW - timedelta(days=1) if index % 2 == 0 else NOW + timedelta(days=3)
                session.add(
                    DeadlineRow(
                        deadline_id=f"clue-{index:07d}:disposal:1",
                        case_id=f"clue-{index:07d}",
                        county_id="c-bench",
                        zone_id=f"z-{index % 6 + 1}",
                        kind="disposal",
                        rule_version="cn-default-2026.1",
                        started_at=due - timedelta(days=30),
                        due_at=due,
                        warn_at=due - timedelta(days=5),
                        status="open",
                        extensions=0,
                    )
                )


async def _pass(scanner: DeadlineScanner) -> dict[str, Any]:
    started = time.perf_counter()
    result = await scanner.scan(now=NOW)
    seconds = time.perf_counter() - started
    notices = len(result.breached) + len(result.approaching)
    return {
        "breached": len(result.breached),
        "approaching": len(result.approaching),
        "seconds": round(seconds, 3),
        "notices_per_second": round(notices / seconds, 1) if notices else 0.0,
    }


async def _run(url: str, count: int) -> dict[str, Any]:
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    try:
        await _seed(database, count)
        scanner = DeadlineScanner(database)
        return {
            "database": database.engine.dialect.name,
            "deadlines": count,
            "first_pass": await _pass(scanner),
            "idle_pass": await _pass(scanner),
        }
    finally:
        await database.dispose()


async def main() -> None:
    """Parse arguments, run both passes, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadlines", type=int, default=20_000)
    parser.add_argument(
        "--postgres", action="store_true", help="start a private PostgreSQL cluster and use it"
    )
    args = parser.parse_args()
    if args.postgres:
        cluster = PostgresCluster()
        await cluster.astart()
        try:
            url = await cluster.acreate_database("cases_bench")
            report = await _run(url, args.deadlines)
        finally:
            await cluster.astop()
    else:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'cases.sqlite3'}"
            report = await _run(url, args.deadlines)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
