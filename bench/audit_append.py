"""The audit log on the hot path: what sealing an entry costs, and what per-county heads buy.

Run: ``.venv/bin/python bench/audit_append.py [--writers 8] [--each 40] [--hold-ms 20]``
(a private PostgreSQL cluster in a temp dir, started and removed by the bench).

What is measured (one JSON object is printed; timings are never asserted):
- ``seal_us``: one HMAC-SHA256 seal of a typical entry (canonical JSON + HMAC), in µs.
- ``sqlite``: appends/s, p50 and p99 of sequential appends, one committed transaction each, on
  a migrated SQLite file (the commit's fsync dominates).
- ``postgres_one_county`` / ``postgres_per_county``: `writers` concurrent writers, each
  appending `each` entries in transactions that stay open `hold-ms` after the append (as a unit
  of work does until it commits), all in one county vs each writer in its own county. The first
  is serialised by the county's head row; the second is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import timeit
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.runtime import audit
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.localstack import PostgresCluster
from services.runtime.migrate import upgrade_async


def _seal_us() -> float:
    key = AuditKey.generate()
    entry = audit.AuditEntry(
        county_id="330102",
        seq=1,
        at=datetime.now(UTC),
        actor="officer-1",
        action="report.submitted",
        record_type="report",
        record_id=f"rpt-{uuid.uuid4().hex}",
        detail=json.dumps({"channel": "letter", "clue_id": f"clue-{uuid.uuid4().hex}"}),
        prev_hash="0" * 64,
        entry_hash="",
    )
    runs = 20_000
    return round(timeit.timeit(lambda: audit.entry_seal(key, entry), number=runs) / runs * 1e6, 1)


async def _writer(
    database: Database, county: str, each: int, hold: float, latencies: list[float]
) -> None:
    for index in range(each):
        started = time.perf_counter()
        async with database.transaction() as session:
            await audit.append(
                session,
                county_id=county,
                actor="officer",
                action="report.submitted",
                record_type="report",
                record_id=f"rpt-{index}",
                detail={"channel": "letter"},
            )
            if hold:
                await asyncio.sleep(hold)
        latencies.append(time.perf_counter() - started)


async def _run(database: Database, counties: list[str], each: int, hold: float) -> dict[str, Any]:
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_writer(database, c, each, hold, latencies) for c in counties))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "appends": len(latencies),
        "appends_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2),
    }


async def _database(url: str) -> Database:
    await upgrade_async("intake", url)
    return Database(url, audit_key=AuditKey.generate())


async def main(writers: int, each: int, hold_ms: float) -> dict[str, Any]:
    """Every measurement, as one dict."""
    result: dict[str, Any] = {"seal_us": _seal_us()}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await _database(f"sqlite+aiosqlite:///{Path(tmp) / 'audit.sqlite3'}")
        try:
            result["sqlite"] = await _run(sqlite, ["330102"], each * writers, 0.0)
        finally:
            await sqlite.dispose()
    cluster = PostgresCluster()
    await cluster.astart()
    try:
        hold = hold_ms / 1000
        for name, counties in (
            ("postgres_one_county", ["330102"] * writers),
            ("postgres_per_county", [f"county-{n}" for n in range(writers)]),
        ):
            url = await cluster.acreate_database(f"audit_{uuid.uuid4().hex[:8]}")
            database = await _database(url)
            try:
                result[name] = await _run(database, counties, each, hold)
            finally:
                await database.dispose()
    finally:
        await cluster.astop()
    result |= {"writers": writers, "hold_ms": hold_ms}
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--each", type=int, default=40)
    parser.add_argument("--hold-ms", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.writers, args.each, args.hold_ms)), indent=2))
