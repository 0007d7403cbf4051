"""Special campaigns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.assessment.v1 import assessment_pb2 as pb

from services.assessment.api import policy
from services.assessment.api.idempotency import required, run_once
from services.assessment.api.requests import Context
from services.assessment.domain.campaign import Campaign, campaign_problems
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.store.campaigns import (
    campaign_view,
    list_campaigns,
    load_campaign,
    save_campaign,
)
from services.assessment.store.scorecards import Scoring
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, NotFound


class CampaignCalls:
    """DefineCampaign, GetCampaignView, ListCampaigns."""

    _db: Database
    _scoring: Scoring
    _calendar: AssessmentCalendar

    async def DefineCampaign(
        self, request: pb.DefineCampaignRequest, context: Context
    ) -> pb.DefineCampaignResponse:
        """Define or redefine a special campaign."""
        violations = required(request, "idempotency_key")
        days: dict[str, date] = {}
        for name in ("starts_on", "ends_on"):
            try:
                days[name] = date.fromisoformat(getattr(request, name))
            except ValueError:
                violations.append(FieldViolation(name, "must be a date YYYY-MM-DD"))
        if violations:
            raise InvalidArgument(violations)
        campaign = Campaign(
            campaign_id=request.campaign_id,
            county_id=request.county_id,
            name=request.name.strip(),
            domain=request.domain.strip(),
            starts_on=days["starts_on"],
            ends_on=days["ends_on"],
            zone_ids=tuple(request.zone_ids),
        )
        problems = campaign_problems(campaign)
        if problems:
            raise InvalidArgument([FieldViolation(field, text) for field, text in problems])
        principal = current_principal()
        policy.authorize_campaign(principal, county_id=request.county_id)

        async def define(session: AsyncSession) -> dict[str, Any]:
            existing = await load_campaign(session, campaign.campaign_id)
            if existing is not None and existing.county_id != campaign.county_id:
                # Campaign ids are global: another county's campaign is not ours to redefine.
                raise InvalidArgument([FieldViolation("campaign_id", "is taken")])
            await save_campaign(
                session, campaign, defined_by=principal.subject, defined_at=datetime.now(UTC)
            )
            await audit.append(
                session,
                county_id=campaign.county_id,
                actor=principal.subject,
                action="campaign.defined",
                record_type="campaign",
                record_id=campaign.campaign_id,
                detail={"zones": sorted(campaign.zone_ids)},
            )
            return {"campaign_id": campaign.campaign_id}

        result = await run_once(
            self._db,
            key=request.idempotency_key,
            actor=principal.subject,
            command="DefineCampaign",
            request=[
                campaign.campaign_id,
                campaign.county_id,
                campaign.name,
                campaign.domain,
                str(campaign.starts_on),
                str(campaign.ends_on),
                sorted(campaign.zone_ids),
            ],
            work=define,
        )
        return pb.DefineCampaignResponse(**result)

    async def GetCampaignView(
        self, request: pb.GetCampaignViewRequest, context: Context
    ) -> pb.GetCampaignViewResponse:
        """A campaign's clues by category and zone, and its cases' milestones."""
        violations = required(request, "county_id", "campaign_id")
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones = policy.progress_zones(
            principal, county_id=request.county_id, zone_id="", what="campaign results"
        )
        async with self._db.transaction() as session:
            campaign = await load_campaign(session, request.campaign_id)
            if campaign is None or campaign.county_id != request.county_id:
                raise NotFound("campaign", request.campaign_id)
            view = await campaign_view(session, campaign, zone_ids=zones)

        def tallies_of(counts: dict[str, int]) -> list[pb.Tally]:
            return [pb.Tally(key=key, count=count) for key, count in counts.items()]

        return pb.GetCampaignViewResponse(
            campaign_id=campaign.campaign_id,
            name=campaign.name,
            domain=campaign.domain,
            starts_on=campaign.starts_on.isoformat(),
            ends_on=campaign.ends_on.isoformat(),
            zone_ids=list(campaign.zone_ids),
            clues_by_category=tallies_of(view.clues_by_category),
            clues_by_zone=tallies_of(view.clues_by_zone),
            case_milestones=tallies_of(view.case_milestones),
            rectification=tallies_of(view.rectification),
        )

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: Context
    ) -> pb.ListCampaignsResponse:
        """The county's campaigns the caller may read (a zone leader: their zones')."""
        violations = required(request, "county_id")
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones = policy.progress_zones(
            principal, county_id=request.county_id, zone_id="", what="campaigns"
        )
        async with self._db.transaction() as session:
            campaigns = await list_campaigns(session, request.county_id)
        if zones is not None:
            campaigns = [c for c in campaigns if set(c.zone_ids) & set(zones)]
        return pb.ListCampaignsResponse(
            campaigns=[
                pb.CampaignSummary(
                    campaign_id=c.campaign_id,
                    name=c.name,
                    domain=c.domain,
                    starts_on=c.starts_on.isoformat(),
                    ends_on=c.ends_on.isoformat(),
                    zone_ids=list(c.zone_ids),
                )
                for c in campaigns
            ]
        )
