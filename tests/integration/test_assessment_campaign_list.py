"""ListCampaigns over a real gRPC endpoint and database: the county's campaigns, latest first,
a zone leader's only those their zones take part in, and who may not list them at all."""

from __future__ import annotations

import grpc
from xiezuo.assessment.v1 import assessment_pb2 as pb

from services.runtime.grpc.errors import field_violations
from services.runtime.tokens import Principal
from tests.integration.test_assessment_grpc import (
    ASSESSOR,
    CHIEF_Z1,
    COUNTY,
    LEADER,
    STAFF_P1,
    Client,
    _denied,
)

# The service and database fixture (re-exported, so pytest finds it here).
from tests.integration.test_assessment_grpc import client as client


def _campaign(campaign_id: str, starts_on: str, zones: list[str]) -> pb.DefineCampaignRequest:
    return pb.DefineCampaignRequest(
        idempotency_key=f"define-{campaign_id}",
        county_id=COUNTY,
        campaign_id=campaign_id,
        name=f"专项 {campaign_id}",
        domain="poverty-alleviation-funds",
        starts_on=starts_on,
        ends_on="2026-12-31",
        zone_ids=zones,
    )


async def test_campaigns_are_listed_latest_first_and_a_zone_leader_sees_their_zones(
    client: Client,
) -> None:
    for request in (
        _campaign("funds-2026", "2026-04-01", ["z1", "z2"]),
        _campaign("land-2026", "2026-06-01", ["z2"]),
        _campaign("roads-2026", "2026-02-01", ["z1"]),
    ):
        await client.stub.DefineCampaign(request, metadata=client.as_(LEADER))
    other = Principal("leader-2", frozenset({"county_leadership"}), "c2", ("*",))
    await client.stub.DefineCampaign(
        pb.DefineCampaignRequest(
            **{
                **{f.name: v for f, v in _campaign("c2-only", "2026-07-01", ["z9"]).ListFields()},
                "county_id": "c2",
            }
        ),
        metadata=client.as_(other),
    )

    listed = await client.stub.ListCampaigns(
        pb.ListCampaignsRequest(county_id=COUNTY), metadata=client.as_(ASSESSOR)
    )
    assert [c.campaign_id for c in listed.campaigns] == ["land-2026", "funds-2026", "roads-2026"]
    first = listed.campaigns[1]
    assert (first.name, first.starts_on, first.ends_on, list(first.zone_ids)) == (
        "专项 funds-2026",
        "2026-04-01",
        "2026-12-31",
        ["z1", "z2"],
    )
    chief = await client.stub.ListCampaigns(
        pb.ListCampaignsRequest(county_id=COUNTY), metadata=client.as_(CHIEF_Z1)
    )
    assert [c.campaign_id for c in chief.campaigns] == ["funds-2026", "roads-2026"]

    staff = await _denied(
        client.stub.ListCampaigns(
            pb.ListCampaignsRequest(county_id=COUNTY), metadata=client.as_(STAFF_P1)
        )
    )
    assert staff.code() is grpc.StatusCode.PERMISSION_DENIED
    elsewhere = await _denied(
        client.stub.ListCampaigns(
            pb.ListCampaignsRequest(county_id="c2"), metadata=client.as_(LEADER)
        )
    )
    assert elsewhere.code() is grpc.StatusCode.PERMISSION_DENIED
    missing = await _denied(
        client.stub.ListCampaigns(pb.ListCampaignsRequest(), metadata=client.as_(LEADER))
    )
    assert missing.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(missing)] == ["county_id"]
