"""examples/consumer on the real broker with real clues and real deadline breaches.

The demo flow (tests/e2e/test_example_consumer.py) breaches no deadline while a test runs: its
records are back-entered, and a past-due back-entered deadline waits 24 hours. Here cases'
deadline scanner breaches real deadlines, the outbox relays publish them, and the example's
per-zone tally must equal what assessment's projection counts from the same broker.

A broker of its own (`own_kafka`): on the session broker the e2e stack's cases service takes
these clues too and, its scanner running on today's date, breaches their deadlines again in
its own database, so each clue would count two breaches.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from sqlmodel import col, select

from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.store.tables import KpiTally
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store.deadline_scan import DeadlineScanner
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from services.runtime.outbox import OutboxRelay, record_event
from tests.conftest import MakeDatabase
from tests.integration.helpers import running_broker, started_producer, unique, wait_until

pytestmark = pytest.mark.kafka

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consumer" / "zone_tally.py"
REGISTERED = datetime(2026, 3, 2, 9, tzinfo=UTC)
# Disposal is due one month after registration (2026-04-02); this scan finds it past due.
BREACH = datetime(2026, 4, 3, 9, tzinfo=UTC)
CLUES_PER_ZONE = {"z-1": 2, "z-2": 1}


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zone_tally_it", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["zone_tally_it"] = module
    spec.loader.exec_module(module)
    return module


def _clue(county: str, zone: str) -> ClueRegistered:
    township = f"t-{zone}"
    return ClueRegistered(
        county_id=county,
        zone_id=zone,
        clue_id=unique("clue"),
        report_id=unique("report"),
        township_id=township,
        channel="letter",
        allegation_categories=["embezzlement"],
        subject=ReportedSubject(
            name="某某", post="主任", unit="某村", township_id=township, cadre_level="village"
        ),
        real_name=False,
        received_at=REGISTERED,
        registered_at=REGISTERED,
    )


async def _register(intake: Database, cases: Database, clue: ClueRegistered) -> None:
    # Intake's side: the event in its outbox. Cases' side: the clue on its ledger, as cases'
    # own handler puts it there (with its disposal deadline).
    async with intake.transaction() as session:
        record_event(session, clue, source="xiezuo/intake", occurred_at=REGISTERED)
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=clue.event_type,
        source="xiezuo/intake",
        time=REGISTERED,
        county_id=clue.county_id,
        zone_id=clue.zone_id,
        data=clue.model_dump_json().encode(),
    )
    async with cases.transaction() as session:
        await ClueRegisteredHandler([DEFAULT_RULES])(session, clue, envelope)


async def _assessment_tally(database: Database, county: str) -> dict[str, dict[str, int]]:
    async with database.session() as session:
        rows = (
            await session.exec(
                select(KpiTally).where(
                    KpiTally.county_id == county,
                    KpiTally.level == "zone",
                    col(KpiTally.kpi).in_(["clues_received", "deadlines_breached"]),
                )
            )
        ).all()
    tally: dict[str, dict[str, int]] = {}
    for row in rows:
        what = "clues" if row.kpi == "clues_received" else "deadlines_breached"
        counts = tally.setdefault(row.zone_id, {"clues": 0, "deadlines_breached": 0})
        counts[what] += row.value
    return tally


async def test_the_example_counts_real_breaches_as_assessment_does(
    make_database: MakeDatabase, own_kafka: KafkaNode, tmp_path: Path
) -> None:
    county = unique("c-example")
    intake, cases, assessment = (
        await make_database("intake"),
        await make_database("cases"),
        await make_database("assessment"),
    )
    for zone, count in CLUES_PER_ZONE.items():
        for _ in range(count):
            await _register(intake, cases, _clue(county, zone))
    scan = await DeadlineScanner(cases).scan(now=BREACH)
    assert len(scan.breached) >= sum(CLUES_PER_ZONE.values())
    expected = {
        zone: {"clues": count, "deadlines_breached": count}
        for zone, count in CLUES_PER_ZONE.items()
    }

    bootstrap = own_kafka.bootstrap_servers
    async with started_producer(bootstrap) as producer:
        for database in (intake, cases):
            await OutboxRelay(database, producer).publish_pending()
        consumer = EventConsumer(
            service=unique("assessment"), database=assessment, dead_letter_producer=producer
        )
        register_handlers(consumer, AssessmentCalendar(), projections())
        example = _example()
        state = tmp_path / "tally.json"
        stop = asyncio.Event()
        reading = asyncio.create_task(
            example.run(bootstrap, unique("acme-dashboard.zone-tally"), state, stop, county)
        )
        try:
            async with running_broker(bootstrap, consumer):
                seen: dict[str, object] = {}

                async def both_counted() -> bool:
                    if state.exists():
                        seen["example"] = json.loads(state.read_text(encoding="utf-8"))["zones"]
                    seen["assessment"] = await _assessment_tally(assessment, county)
                    return seen.get("example") == expected == seen["assessment"]

                try:
                    await wait_until(both_counted, "both tallies", within=120)
                except AssertionError as exc:
                    raise AssertionError(f"expected {expected}, saw {seen}") from exc
        finally:
            stop.set()
            await reading
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["unreadable"] == []
