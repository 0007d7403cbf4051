"""SQL statements and CPU per event of one consumer's batches, without Kafka.

Run from the repository root: ``.venv/bin/python -m bench.consumer_statements
[--service cases|assessment] [--events N] [--batch B] [--profile FILE]`` (SQLite in a temp
dir; it reuses consumer_batch.py's events and routes).

The events of ``bench/consumer_batch.py`` are handed to ``EventConsumer.consume_batch`` in
batches of B, straight from memory, so only the consumer's own work is measured: the
statements it sends (counted by kind with an engine event listener, which does not depend on
the machine's load) and the process CPU and wall time per event (which do). The first batch
warms up and is not counted. ``--profile FILE`` writes a cProfile of the counted batches (the
event loop's thread only; SQLite itself runs in aiosqlite's thread). One JSON object is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.consumer_batch import (
    _assessment_envelopes,
    _clue_envelopes,
    _NoDeadLetters,
    _route,
)
from services.contracts.registry import EVENT_TYPES
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.inbox import EventConsumer, Record
from services.runtime.migrate import upgrade_async


def _kind(statement: str) -> str:
    """`INSERT inbox_entry`, `SAVEPOINT`, ...: the verb and, for writes, the table."""
    words = statement.split()
    verb = words[0].upper() if words else ""
    if verb == "INSERT" and len(words) > 2:
        return f"INSERT {words[2]}"
    if verb == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1]}"
    return verb


async def _run(service: str, events: int, batch: int, profile: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / f'{service}.sqlite3'}"
        await upgrade_async(service, url)
        database = Database(url, audit_key=AuditKey.generate())
        consumer = EventConsumer(
            service=f"{service}-bench-{uuid.uuid4().hex[:6]}",
            database=database,
            dead_letter_producer=_NoDeadLetters(),
            batch_size=batch,
        )
        _route(service, consumer)
        envelopes = (
            _clue_envelopes(events + batch)
            if service == "cases"
            else _assessment_envelopes(events + batch)
        )
        topic_of = {name: cls.topic for name, cls in EVENT_TYPES.items()}
        records = [
            Record(
                topic=topic_of[envelope.type],
                partition=0,
                offset=offset,
                key=f"{envelope.county_id}:{envelope.zone_id}".encode(),
                value=envelope.data,
                headers=tuple(envelope.headers()),
            )
            for offset, envelope in enumerate(envelopes)
        ]
        kinds: collections.Counter[str] = collections.Counter()

        def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            kinds[_kind(statement)] += 1

        event.listen(database.engine.sync_engine, "before_cursor_execute", note)
        await consumer.consume_batch(records[:batch])  # warm-up: chain heads, caches
        kinds.clear()
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for start in range(batch, len(records), batch):
            await consumer.consume_batch(records[start : start + batch])
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await database.dispose()
    counted = len(records) - batch
    return {
        "service": service,
        "events": counted,
        "batch_size": batch,
        "statements_per_event": round(sum(kinds.values()) / counted, 2),
        "statements_by_kind_per_event": {
            kind: round(count / counted, 2) for kind, count in kinds.most_common()
        },
        "cpu_ms_per_event": round(1000 * cpu / counted, 3),
        "events_per_second": round(counted / wall),
        "load_average": list(os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=("cases", "assessment"), default="cases")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", help="write a cProfile of the counted batches here")
    args = parser.parse_args()
    result = asyncio.run(_run(args.service, args.events, args.batch, args.profile))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
