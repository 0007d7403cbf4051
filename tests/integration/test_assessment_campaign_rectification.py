"""Rectification progress in a campaign view, from RectificationOpened/Closed in any order."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.assessment.domain.campaign import Campaign
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import register_handlers
from services.assessment.store.campaigns import campaign_view
from services.contracts.base import IntegrationEvent
from services.contracts.cases import RectificationClosed, RectificationOpened
from services.runtime.inbox import EventConsumer
from services.runtime.localstack import KafkaNode
from tests.conftest import MakeDatabase
from tests.integration.helpers import record_of, started_producer, unique
from tests.integration.test_assessment_projection import envelope

pytestmark = pytest.mark.kafka

COUNTY = "c-rect"
CAMPAIGN = Campaign(
    campaign_id="camp-funds",
    county_id=COUNTY,
    name="惠民资金专项",
    domain="livelihood-funds",
    starts_on=date(2026, 4, 1),
    ends_on=date(2026, 9, 30),
    zone_ids=("z1", "z2"),
)
AT = datetime(2026, 6, 1, tzinfo=UTC)


def opened(item: str, zone: str, source: str = "campaign") -> RectificationOpened:
    """Item `item` opened in `zone` under the campaign (or another source)."""
    return RectificationOpened(
        county_id=COUNTY,
        zone_id=zone,
        item_id=item,
        township_id="t1",
        source=source,
        source_ref=CAMPAIGN.campaign_id,
        owner_unit="某村",
        due_at=datetime(2026, 7, 1, tzinfo=UTC),
        rule_version="r1",
        opened_by="p-chief",
        opened_at=AT,
    )


def closed(item: str, zone: str, overdue: bool) -> RectificationClosed:
    """Item `item` verified done."""
    return RectificationClosed(
        county_id=COUNTY,
        zone_id=zone,
        item_id=item,
        township_id="t1",
        source="campaign",
        source_ref=CAMPAIGN.campaign_id,
        owner_unit="某村",
        due_at=datetime(2026, 7, 1, tzinfo=UTC),
        rule_version="r1",
        verified_by="p-chief",
        closed_at=datetime(2026, 7, 5 if overdue else 1, tzinfo=UTC),
        overdue=overdue,
    )


async def test_campaign_view_shows_rectification_progress_in_any_order(
    make_database: MakeDatabase, kafka: KafkaNode
) -> None:
    events: list[IntegrationEvent] = [
        # Closed before its opening is consumed (both orders must give the same row).
        closed("i1", "z1", overdue=False),
        opened("i1", "z1"),
        opened("i2", "z1"),
        closed("i2", "z1", overdue=True),
        opened("i3", "z2"),
        # An inspection-tour item naming the same ref is not the campaign's.
        opened("i4", "z1", source="inspection_tour"),
    ]
    database = await make_database("assessment")
    async with started_producer(kafka.bootstrap_servers) as producer:
        consumer = EventConsumer(
            service=unique("assessment"), database=database, dead_letter_producer=producer
        )
        register_handlers(consumer, AssessmentCalendar(), projections())
        for offset, event in enumerate(events):
            await consumer.consume(record_of(envelope(event, AT), topic="t", offset=offset))
    async with database.session() as session:
        everything = await campaign_view(session, CAMPAIGN, zone_ids=None)
        zone2 = await campaign_view(session, CAMPAIGN, zone_ids=["z2"])
    assert everything.rectification == {"opened": 3, "open": 1, "closed": 2, "closed_on_time": 1}
    assert zone2.rectification == {"opened": 1, "open": 1, "closed": 0, "closed_on_time": 0}
