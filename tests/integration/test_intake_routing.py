"""TownshipPlaced over the real broker fills intake's registry copy; reports follow it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from services.contracts.staffing import TownshipPlaced
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission
from services.intake.domain.routing import route
from services.intake.handlers.township_placed import on_township_placed
from services.intake.store.reports import ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReportRow
from services.intake.store.townships import TownshipRegistry
from services.intake.store.vault import Vault
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from tests.conftest import MakeDatabase
from tests.integration.helpers import (
    create_topics,
    produce,
    running_broker,
    started_producer,
    unique,
    wait_until,
)


async def test_a_placed_township_routes_its_reports_to_the_zone(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    topic = unique("test.staffing.registry")
    await create_topics(kafka.bootstrap_servers, topic)
    placed_class = type(
        "TownshipPlacedOnPrivateTopic",
        (TownshipPlaced,),
        {"topic": topic, "__module__": __name__},
    )
    database = await make_database("intake")
    county = unique("county")
    registry = TownshipRegistry(database)
    event = placed_class(
        county_id=county,
        zone_id="zone-east",
        township_id="t-hexi",
        township_name="Hexi",
        effective_from=date(2026, 1, 1),
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/staffing",
        time=datetime.now(UTC),
        county_id=county,
        zone_id="zone-east",
        data=event.model_dump_json().encode(),
        subject=event.subject_id(),
    )
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("intake"), database=database, dead_letter_producer=producer
        )
        consumer.on(placed_class, on_township_placed)
        async with running_broker(kafka.bootstrap_servers, consumer):
            await produce(
                kafka.bootstrap_servers,
                topic,
                [(county.encode(), envelope.data, envelope.headers())],
            )

            async def placed() -> bool:
                zone = await registry.zone_of(county, "t-hexi", on=date(2026, 3, 2))
                return zone == "zone-east"

            await wait_until(placed, "the placement in intake's registry copy")

    # Before the placement took effect the township was in no zone yet.
    assert await registry.zone_of(county, "t-hexi", on=date(2025, 12, 31)) is None
    placed_zone = await registry.zone_of(county, "t-hexi", on=date(2026, 3, 2))
    zone, problem = route(township_id="t-hexi", requested_zone="", placed_zone=placed_zone)
    assert (zone, problem) == ("zone-east", "")
    submission = Submission(
        idempotency_key="k1",
        county_id=county,
        zone_id=zone,
        township_id="t-hexi",
        channel=Channel.LETTER,
        subject=Subject("Li", "secretary", "Hexi committee", "t-hexi", "", CadreLevel.VILLAGE),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=None,
        campaign_id=None,
        received_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    registration = await ReportRegistry(database, Vault(bytes(32)), load_rule_book()).register(
        submission, actor="officer"
    )
    assert registration.zone_id == "zone-east"
    async with database.session() as session:
        row = await session.get(ReportRow, registration.report_id)
    assert row is not None and row.zone_id == "zone-east"
