"""A downstream team's consumer of Xiezuo events: clues and breached deadlines per zone.

Standalone on purpose: plain aiokafka and the CloudEvents SDK, nothing imported from Xiezuo.
It shows what docs/consumers.md asks of every consumer:

- its own consumer group (`<team>.<purpose>`), offsets committed only after the effect is saved;
- at-least-once delivery, so it deduplicates by `ce_id` (kept with the tally, saved together);
- tolerant reading: it matches the exact `.vN` types it understands, skips every other type,
  and reads only the fields it needs (new optional fields change nothing);
- a record it cannot read is set aside with its reason, never retried for ever.

Run: python examples/consumer/zone_tally.py --bootstrap 127.0.0.1:9092 --state tally.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from cloudevents.core.bindings import kafka as ce_kafka

log = logging.getLogger("zone_tally")

CLUES_TOPIC = "xiezuo.intake.clues"
DEADLINES_TOPIC = "xiezuo.cases.deadlines"
# The exact versions understood: a `.v2` is a new contract, read only once this code knows it.
CLUE_REGISTERED = "xiezuo.intake.clue_registered.v1"
DEADLINE_BREACHED = "xiezuo.cases.deadline_breached.v1"


@dataclass
class Tally:
    """Per-zone counts, the event ids already counted, and records that could not be read."""

    zones: dict[str, dict[str, int]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    unreadable: list[dict[str, Any]] = field(default_factory=list)
    caught_up: bool = False

    def count(self, event_id: str, zone: str, what: str) -> None:
        """Count once per event id: a redelivered record changes nothing."""
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        counts = self.zones.setdefault(zone, {"clues": 0, "deadlines_breached": 0})
        counts[what] += 1

    def save(self, path: Path) -> None:
        """Write atomically (rename), so a crash leaves the old or the new state, never half."""
        text = json.dumps(
            {
                "zones": dict(sorted(self.zones.items())),
                "seen": sorted(self.seen),
                "unreadable": self.unreadable[-100:],
                "caught_up": self.caught_up,
            },
            ensure_ascii=False,
            indent=1,
        )
        partial = path.with_suffix(".tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> Tally:
        """The saved state, or an empty one."""
        if not path.exists():
            return cls()
        saved = json.loads(path.read_text(encoding="utf-8"))
        return cls(zones=saved["zones"], seen=set(saved["seen"]), unreadable=saved["unreadable"])


def apply(
    tally: Tally,
    headers: list[tuple[str, bytes]],
    key: bytes | None,
    value: bytes,
    county: str | None = None,
) -> None:
    """Read one record with the CloudEvents SDK and count it if it is one we understand."""
    try:
        event = ce_kafka.from_kafka_event(
            ce_kafka.KafkaMessage(headers=dict(headers), key=key, value=value)
        )
    except Exception as exc:  # the SDK raises several types; any of them means "unreadable"
        tally.unreadable.append({"reason": type(exc).__name__, "error": str(exc)[:200]})
        return
    kind = event.get_type()
    if kind not in (CLUE_REGISTERED, DEADLINE_BREACHED):
        return  # another type on the same topic, or a newer version: not ours to count
    data = event.get_data()
    if county is not None and (not isinstance(data, dict) or data.get("county_id") != county):
        return  # another county's event: this team reads one county
    zone = data.get("zone_id") if isinstance(data, dict) else None
    if not zone:
        tally.unreadable.append({"reason": "no zone_id", "id": event.get_id()})
        return
    tally.count(event.get_id(), zone, "clues" if kind == CLUE_REGISTERED else "deadlines_breached")


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    assigned = consumer.assignment()
    if not assigned:
        return False
    ends = await consumer.end_offsets(list(assigned))
    for partition in assigned:
        if await consumer.position(partition) < ends[partition]:
            return False
    return True


async def run(
    bootstrap: str, group: str, state: Path, stop: asyncio.Event, county: str | None = None
) -> None:
    """Consume until `stop`; save the tally, then commit, after every batch."""
    tally = Tally.load(state)
    delay = 0.5
    while True:
        consumer = AIOKafkaConsumer(
            CLUES_TOPIC,
            DEADLINES_TOPIC,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            # A new group starts from the beginning: the topics hold the whole history.
            auto_offset_reset="earliest",
            # Topics created after the consumer started are picked up within seconds.
            metadata_max_age_ms=2000,
        )
        # The broker may not be up yet (or be restarting): wait for it rather than exit.
        try:
            await consumer.start()
            break
        except KafkaConnectionError:
            await consumer.stop()
            if stop.is_set():
                return
            log.info("broker %s not reachable yet; retrying in %.1f s", bootstrap, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    try:
        while not stop.is_set():
            batches: dict[TopicPartition, list[Any]] = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    apply(tally, list(record.headers), record.key, record.value or b"", county)
            tally.caught_up = await _caught_up(consumer)
            # Effect first, offsets second: a crash in between redelivers, and `seen` absorbs it.
            tally.save(state)
            if batches:
                await consumer.commit()
    finally:
        with contextlib.suppress(Exception):
            tally.save(state)
        await consumer.stop()


def main() -> None:
    """Parse arguments and run until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", default="acme-dashboard.zone-tally")
    parser.add_argument("--state", type=Path, default=Path("zone-tally.json"))
    parser.add_argument("--county", help="count only this county's events (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(args.bootstrap, args.group, args.state, stop, args.county)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
