"""Campaigns, the clues registered under them, and the milestones of those clues' cases."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.campaign import Campaign, CampaignView
from services.assessment.store.tables import (
    CampaignClue,
    CampaignRectification,
    CampaignRow,
    CaseMilestone,
)


async def save_campaign(
    session: AsyncSession, campaign: Campaign, *, defined_by: str, defined_at: datetime
) -> None:
    """Define or redefine a campaign."""
    row = await session.get(CampaignRow, campaign.campaign_id)
    if row is None:
        row = CampaignRow(
            campaign_id=campaign.campaign_id,
            county_id=campaign.county_id,
            name="",
            domain="",
            starts_on=campaign.starts_on,
            ends_on=campaign.ends_on,
            zone_ids="[]",
            defined_by=defined_by,
            defined_at=defined_at,
        )
    row.name, row.domain = campaign.name, campaign.domain
    row.starts_on, row.ends_on = campaign.starts_on, campaign.ends_on
    row.zone_ids = json.dumps(sorted(campaign.zone_ids))
    row.defined_by, row.defined_at = defined_by, defined_at
    session.add(row)


LISTED_CAMPAIGNS = 500


async def list_campaigns(session: AsyncSession, county_id: str) -> list[Campaign]:
    """A county's campaigns, latest start first (at most LISTED_CAMPAIGNS)."""
    query = (
        select(CampaignRow)
        .where(CampaignRow.county_id == county_id)
        .order_by(col(CampaignRow.starts_on).desc(), col(CampaignRow.campaign_id))
        .limit(LISTED_CAMPAIGNS)
    )
    rows = (await session.exec(query)).all()
    return [_campaign(row) for row in rows]


async def load_campaign(session: AsyncSession, campaign_id: str) -> Campaign | None:
    """A campaign by id."""
    row = await session.get(CampaignRow, campaign_id)
    if row is None:
        return None
    return _campaign(row)


def _campaign(row: CampaignRow) -> Campaign:
    return Campaign(
        campaign_id=row.campaign_id,
        county_id=row.county_id,
        name=row.name,
        domain=row.domain,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        zone_ids=tuple(json.loads(row.zone_ids)),
    )


async def record_campaign_rectification(
    session: AsyncSession,
    *,
    item_id: str,
    county_id: str,
    zone_id: str,
    campaign_id: str,
    opened_at: datetime | None = None,
    closed_at: datetime | None = None,
    overdue: bool | None = None,
) -> None:
    """Note a campaign's rectification item opening or closing, whichever arrives first."""
    row = await session.get(CampaignRectification, item_id)
    if row is None:
        row = CampaignRectification(
            item_id=item_id, county_id=county_id, zone_id=zone_id, campaign_id=campaign_id
        )
    if opened_at is not None:
        row.opened_at = opened_at
    if closed_at is not None:
        row.closed_at, row.overdue = closed_at, overdue
    session.add(row)


async def _rectification(
    session: AsyncSession, campaign: Campaign, zone_ids: Sequence[str] | None
) -> dict[str, int]:
    query = select(CampaignRectification).where(
        CampaignRectification.county_id == campaign.county_id,
        CampaignRectification.campaign_id == campaign.campaign_id,
    )
    if zone_ids is not None:
        query = query.where(col(CampaignRectification.zone_id).in_(list(zone_ids)))
    items = (await session.exec(query)).all()
    closed = [item for item in items if item.closed_at is not None]
    return {
        "opened": len(items),
        "open": len(items) - len(closed),
        "closed": len(closed),
        "closed_on_time": sum(1 for item in closed if not item.overdue),
    }


async def campaign_view(
    session: AsyncSession, campaign: Campaign, *, zone_ids: Sequence[str] | None
) -> CampaignView:
    """Clues by category and zone, and their cases' milestones (optionally some zones only)."""
    clues_query = select(CampaignClue).where(
        CampaignClue.county_id == campaign.county_id,
        CampaignClue.campaign_id == campaign.campaign_id,
    )
    if zone_ids is not None:
        clues_query = clues_query.where(col(CampaignClue.zone_id).in_(list(zone_ids)))
    clues = (await session.exec(clues_query)).all()
    by_category: Counter[str] = Counter()
    by_zone: Counter[str] = Counter()
    for clue in clues:
        by_zone[clue.zone_id] += 1
        by_category.update(json.loads(clue.categories))
    milestones: Counter[str] = Counter()
    clue_ids = [clue.clue_id for clue in clues]
    # The case of a clue carries the clue's id (cases opens one case file per clue).
    for start in range(0, len(clue_ids), 500):
        query = select(CaseMilestone.case_id, CaseMilestone.milestone).where(
            col(CaseMilestone.case_id).in_(clue_ids[start : start + 500])
        )
        # A milestone counts once per case even if a step was recorded twice.
        pairs = set((await session.exec(query.distinct())).all())
        milestones.update(milestone for _, milestone in pairs)
    return CampaignView(
        campaign=campaign,
        clues_by_category=dict(sorted(by_category.items())),
        clues_by_zone=dict(sorted(by_zone.items())),
        case_milestones=dict(sorted(milestones.items())),
        rectification=await _rectification(session, campaign, zone_ids),
    )
