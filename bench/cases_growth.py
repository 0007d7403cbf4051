"""Does cases' live path slow down with the clues it stores, or with links to clues it never saw?

Run: ``.venv/bin/python -m bench.cases_growth [--stored 0,10000,100000] [--clues 750]
[--links 20] [--batch 50]`` (SQLite in a temp dir, no Kafka: records go straight to the
consumer's ``consume_batch``, the path the Kafka subscriber calls).

For each stored count, a fresh cases database first applies that many ClueRegistered (the
stored history), then one growth step's worth of records in batches of ``--batch``:
``--clues`` new ClueRegistered with ``--links`` ReportLinked spread among them, the links
naming either stored clues (``known``: cases registered them) or clues cases never saw
(``unknown``: what ``bench/pipeline.py --growth`` produced when it seeded intake alone). Per
case it prints wall and CPU time per record and the dead letters written. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.consumer_batch import ZONES, clue_event
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.handlers.report_linked import ReportLinkedHandler
from services.contracts.intake import CLUES_TOPIC, ClueRegistered, ReportLinked
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer, Record
from services.runtime.migrate import upgrade_async

COUNTY = "c-bench"


class _DeadLetters:
    """Counts what the consumer parks (a real run writes it to the dead-letter topic)."""

    def __init__(self) -> None:
        self.count = 0

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> Any:
        self.count += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _record(event: Any, offset: int) -> Record:
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/intake",
        time=datetime.now(UTC),
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
        subject=event.subject_id(),
    )
    return Record(
        CLUES_TOPIC,
        int(event.zone_id[2:]) % 3,
        offset,
        event.partition_key().encode(),
        envelope.data,
        tuple(envelope.headers()),
    )


def _clue(n: int, prefix: str, at: datetime) -> ClueRegistered:
    return clue_event(
        n,
        county_id=COUNTY,
        township_id=f"t-{n % 18:02d}",
        clue_id=f"clue-{prefix}-{n}",
        report_id=f"rpt-{prefix}-{n}",
        at=at,
    )


def _link(n: int, clue_id: str, zone_id: str, at: datetime) -> ReportLinked:
    return ReportLinked(
        county_id=COUNTY,
        zone_id=zone_id,
        report_id=f"rpt-linked-{n}-{uuid.uuid4().hex[:8]}",
        clue_id=clue_id,
        township_id="t-00",
        channel="letter",
        allegation_categories=["misuse-of-funds"],
        real_name=False,
        received_at=at,
        linked_at=at,
        repeat_count=1,
        priority=60,
        linked_by="fingerprint",
        rules_version="intake-2026",
    )


def _consumer(database: Database, dead_letters: _DeadLetters) -> EventConsumer:
    consumer = EventConsumer(
        service="cases",
        database=database,
        dead_letter_producer=dead_letters,
        batch_size=500,
    )
    clues = ClueRegisteredHandler([DEFAULT_RULES])
    consumer.on(ClueRegistered, clues, batch_handler=clues.apply_batch)
    by_version = {DEFAULT_RULES.version: DEFAULT_RULES}
    consumer.on(ReportLinked, ReportLinkedHandler(by_version, lock=False))
    return consumer


async def run_case(
    scratch: Path, stored: int, args: argparse.Namespace, links: str
) -> dict[str, Any]:
    """A fresh database with `stored` clues, then one step with links `known` or `unknown`."""
    url = f"sqlite+aiosqlite:///{scratch / f'cases-{stored}-{links}.sqlite3'}"
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    dead_letters = _DeadLetters()
    consumer = _consumer(database, dead_letters)
    now = datetime.now(UTC)
    offset = 0
    try:
        history = [_clue(n, "stored", now - timedelta(days=1)) for n in range(stored)]
        for first in range(0, stored, 500):
            records = [_record(e, offset + i) for i, e in enumerate(history[first : first + 500])]
            offset += len(records)
            await consumer.consume_batch(records)
        step: list[Any] = [_clue(n, "new", now) for n in range(args.clues)]
        every = max(1, args.clues // max(1, args.links))
        for k in range(args.links):
            if links == "known":
                # A stored clue, or (nothing stored) one registered earlier in the step.
                target = history[(k * 7919) % stored] if stored else step[k * every]
                clue_id, zone = target.clue_id, target.zone_id
            else:
                clue_id, zone = f"clue-stored-never-seen-{k}", f"z-{k % ZONES}"
            step.insert(k * (every + 1) + every, _link(k, clue_id, zone, now))
        records = [_record(e, offset + i) for i, e in enumerate(step)]
        wall, cpu = time.perf_counter(), time.process_time()
        worst = 0.0
        for first in range(0, len(records), args.batch):
            began = time.perf_counter()
            await consumer.consume_batch(records[first : first + args.batch])
            worst = max(worst, time.perf_counter() - began)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await database.dispose()
    return {
        "stored_in_cases": stored,
        "links_to": links,
        "records": len(records),
        "wall_ms_per_record": round(wall * 1000 / len(records), 3),
        "cpu_ms_per_record": round(cpu * 1000 / len(records), 3),
        "step_wall_s": round(wall, 2),
        "slowest_batch_s": round(worst, 3),
        "dead_letters": dead_letters.count,
    }


async def main() -> None:
    """Parse arguments, run every (stored, links) case, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", default="0,10000,100000")
    parser.add_argument("--clues", type=int, default=750)
    parser.add_argument("--links", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for stored in (int(x) for x in args.stored.split(",")):
            for links in ("known", "unknown"):
                result = await run_case(Path(scratch), stored, args, links)
                print(json.dumps(result), flush=True)
                runs.append(result)
    print(json.dumps({"load_average": [round(x, 2) for x in os.getloadavg()], "runs": runs}))


if __name__ == "__main__":
    asyncio.run(main())
