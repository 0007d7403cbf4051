"""A campaign clue is kept once per clue on SQLite and PostgreSQL, whoever delivers it again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlmodel import col, select

from services.assessment.handlers.ledgers import campaign_clue
from services.assessment.store.tables import CampaignClue
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.runtime.envelope import Envelope
from tests.conftest import MakeDatabase

AT = datetime(2026, 6, 1, tzinfo=UTC)


def _clue(clue_id: str, categories: list[str], campaign: str | None = "camp-1") -> ClueRegistered:
    return ClueRegistered(
        county_id="c1",
        zone_id="z1",
        clue_id=clue_id,
        report_id=f"r-{clue_id}",
        township_id="t1",
        channel="letter",
        allegation_categories=categories,
        subject=ReportedSubject(
            name="Li", post="secretary", unit="Hexi", township_id="t1", cadre_level="village"
        ),
        real_name=False,
        campaign_id=campaign,
        received_at=AT,
        registered_at=AT,
    )


def _envelope() -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=ClueRegistered.event_type,
        source="xiezuo/intake",
        time=AT,
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )


async def test_campaign_clue_is_recorded_once_and_undone_with_its_savepoint(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("assessment")
    async with db.transaction() as session:
        await campaign_clue(session, _clue("k-1", ["misuse-of-funds"]), _envelope())
        # Delivered again under another event id, with other details: the first one stands.
        await campaign_clue(session, _clue("k-1", ["fake-claims"]), _envelope())
        await campaign_clue(session, _clue("k-none", ["misuse-of-funds"], None), _envelope())
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await campaign_clue(session, _clue("k-undone", ["fake-claims"]), _envelope())
                raise RuntimeError("the record's savepoint is rolled back")
    async with db.session() as session:
        rows = (await session.exec(select(CampaignClue).order_by(col(CampaignClue.clue_id)))).all()
    assert [(r.clue_id, r.campaign_id, r.categories) for r in rows] == [
        ("k-1", "camp-1", '["misuse-of-funds"]')
    ]
