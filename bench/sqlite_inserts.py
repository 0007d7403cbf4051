"""SQLite's own cost of cases' five inserts per clue, by id scheme and checkpoint threshold.

Run from the repository root: ``.venv/bin/python -m bench.sqlite_inserts [--clues N]
[--batch B]``. It migrates an empty cases database (SQLite, in a temp dir), then inserts N
clues in transactions of B with plain ``sqlite3`` (no SQLAlchemy, no Kafka, no Python of ours
in between): per clue one row each in ``clue``, ``case_file``, ``case_deadline``,
``inbox_entry`` and ``audit_entry``, as a consumer batch writes them. Each scheme runs in
turn on a fresh database: ids random (version 4, as before) or time-ordered (version 7,
services/runtime/ids.py), with the writers' checkpoint threshold at SQLite's 1,000 pages or at
the services' 16,384 (their WAL checkpointer then works beside them, services/runtime/wal.py).
It prints µs per clue for each table's executemany and for the commits, and the file's size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from services.runtime.ids import time_ordered_uuid
from services.runtime.migrate import upgrade_async

# The columns each insert gives, in the consumer's order (the rest take their defaults).
TABLES: dict[str, list[str]] = {
    "clue": [
        "clue_id",
        "county_id",
        "zone_id",
        "township_id",
        "source_report_id",
        "channel",
        "allegation_categories",
        "subject_cadre_level",
        "real_name",
        "status",
        "rule_version",
        "registered_at",
        "disposal_due_at",
        "repeat_count",
    ],
    "case_file": [
        "case_id",
        "county_id",
        "zone_id",
        "township_id",
        "subject_key",
        "categories",
        "stage",
        "rule_version",
        "state",
        "revision",
        "updated_at",
    ],
    "case_deadline": [
        "deadline_id",
        "case_id",
        "county_id",
        "zone_id",
        "kind",
        "rule_version",
        "started_at",
        "due_at",
        "warn_at",
        "status",
        "extensions",
    ],
    "inbox_entry": ["consumer", "event_id", "event_type", "county_id", "processed_at"],
    "audit_entry": [
        "county_id",
        "at",
        "actor",
        "action",
        "record_type",
        "record_id",
        "detail",
        "prev_hash",
        "entry_hash",
        "seq",
    ],
}
# A new case file's state as cases encodes it is about this long.
STATE = json.dumps({"stage": "registered", "steps": [], "members": {}, "pad": "x" * 520})


def _rows(n: int, ids: str) -> dict[str, tuple[Any, ...]]:
    made = time_ordered_uuid if ids == "ordered" else uuid.uuid4
    clue, event = f"clue-{made().hex}", str(made())
    zone, township, moment = f"z-{n % 6}", f"t-{n % 18:02d}", "2026-12-05 03:04:05.123456"
    return {
        "clue": (clue, "c-demo", zone, township, f"rpt-{made().hex}", "letter",
                 '["embezzlement"]', "village", 0, "registered", "cn-default-2026.2", moment,
                 moment, 0),
        "case_file": (clue, "c-demo", zone, township, uuid.uuid4().hex, '["embezzlement"]',
                      "registered", "cn-default-2026.2", STATE, 0, moment),
        "case_deadline": (f"{clue}:disposal", clue, "c-demo", zone, "disposal",
                          "cn-default-2026.2", moment, moment, moment, "running", 0),
        "inbox_entry": ("cases", event, "xiezuo.intake.clue_registered.v1", "c-demo", moment),
        "audit_entry": ("c-demo", moment, "event:xiezuo/intake", "clue.registered", "clue", clue,
                        '{"rule_version":"cn-default-2026.2","zone_id":"z-1"}', "a" * 64,
                        "b" * 64, n + 1),
    }  # fmt: skip


def _measure(path: Path, clues: int, batch: int, ids: str, pages: int) -> dict[str, Any]:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA wal_autocheckpoint={pages}")
    statements = {
        table: f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        for table, cols in TABLES.items()
    }
    rows = [_rows(n, ids) for n in range(clues)]
    spent = dict.fromkeys([*TABLES, "commit"], 0.0)
    for start in range(0, clues, batch):
        chunk = rows[start : start + batch]
        connection.execute("BEGIN")
        for table, sql in statements.items():
            began = time.perf_counter()
            connection.executemany(sql, [row[table] for row in chunk])
            spent[table] += time.perf_counter() - began
        began = time.perf_counter()
        connection.execute("COMMIT")
        spent["commit"] += time.perf_counter() - began
    connection.close()
    return {
        "ids": ids,
        "autocheckpoint_pages": pages,
        "us_per_clue": {k: round(1e6 * v / clues, 1) for k, v in spent.items()},
        "us_per_clue_total": round(1e6 * sum(spent.values()) / clues, 1),
        "file_mib": round(path.stat().st_size / 2**20, 1),
    }


async def _run(clues: int, batch: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        template = Path(scratch) / "template.sqlite3"
        await upgrade_async("cases", f"sqlite+aiosqlite:///{template}")
        for ids in ("random", "ordered"):
            for pages in (1_000, 16_384):
                path = Path(scratch) / f"{ids}-{pages}.sqlite3"
                path.write_bytes(template.read_bytes())
                results.append(_measure(path, clues, batch, ids, pages))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clues", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    results = asyncio.run(_run(args.clues, args.batch))
    print(json.dumps({"clues": args.clues, "batch": args.batch, "runs": results,
                      "load_average": list(os.getloadavg())}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
