"""The county pages through the console's own app and middleware, with stand-in services.

The services are small fakes of their gRPC answers (tests/browser runs the real platform);
what is checked is the console's part: the request a form becomes, a refusal's field
violations beside their inputs, a retry carrying the same idempotency key, the mark form
offered to assessors only, and the explain page's links to the cases behind a score.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from starlette.testclient import TestClient
from xiezuo.assessment.v1 import assessment_pb2 as pb
from xiezuo.staffing.v1 import registry_pb2

from services.console.app import build_app
from services.console.settings import ConsoleSettings
from services.runtime.grpc.errors import STATUS_DETAILS_KEY
from services.runtime.settings import PlatformSettings
from tests.console_forms import csrf_token, dev_sign_in

ASSESSOR, LEADER = "p-027", "p-003"
EXPLAIN = "/ranking/explain/zone/z-1?quarter=2026Q3"


def _invalid(field: str, description: str) -> grpc.aio.AioRpcError:
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    status = status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="bad request", details=[packed]
    )
    trailing = grpc.aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString()))
    return grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), trailing, "bad request"
    )


class Assessment:
    """Assessment's answers for zone z-1 in 2026Q3; marks above 20 points are refused."""

    def __init__(self) -> None:
        self.marks: list[pb.RecordQualitativeScoreRequest] = []
        self.campaigns: list[pb.DefineCampaignRequest] = []
        self.plans: list[pb.DefinePlanRequest] = []
        self.listed: list[pb.ListCampaignsRequest] = []

    async def ExplainScore(self, request: Any, metadata: Any, **_: Any) -> Any:
        return pb.ExplainScoreResponse(
            scorecard=pb.Scorecard(
                subject_id=request.subject_id,
                quarter=request.quarter,
                total=61.5,
                quantitative=61.5,
                components=[
                    pb.ScoreComponent(kind=pb.COMPONENT_KIND_BASE, points=50),
                    pb.ScoreComponent(
                        kind=pb.COMPONENT_KIND_BONUS,
                        kpi="cases_filed",
                        count=2,
                        points=2,
                        event_ids=["e1", "e2"],
                        case_ids=["clue-a", "clue-b"],
                    ),
                ],
            )
        )

    async def RecordQualitativeScore(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.marks.append(request)
        if request.points > 20:
            raise _invalid("points", "must be 0..20")
        return pb.RecordQualitativeScoreResponse(assessor=ASSESSOR, points=request.points)

    async def DefineCampaign(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.campaigns.append(request)
        if not request.zone_ids:
            raise _invalid("zone_ids", "name at least one zone")
        return pb.DefineCampaignResponse(campaign_id=request.campaign_id)

    async def GetCampaignView(self, request: Any, metadata: Any, **_: Any) -> Any:
        return pb.GetCampaignViewResponse(
            campaign_id=request.campaign_id,
            name="惠民资金专项监督",
            domain="poverty-alleviation-funds",
            starts_on="2026-03-01",
            ends_on="2026-10-31",
            zone_ids=["z-1"],
            clues_by_category=[pb.Tally(key="embezzlement", count=2)],
            case_milestones=[pb.Tally(key="filed", count=1)],
        )

    async def ListCampaigns(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.listed.append(request)
        return pb.ListCampaignsResponse(
            campaigns=[
                pb.CampaignSummary(
                    campaign_id="camp-1",
                    name="惠民资金专项监督",
                    starts_on="2026-03-01",
                    ends_on="2026-10-31",
                    zone_ids=["z-1", "z-9"],
                )
            ]
        )

    async def GetPlanProgress(self, request: Any, metadata: Any, **_: Any) -> Any:
        target = pb.PlanTarget(quarter=request.quarter, zone_id="z-1", kpi="cases_filed", target=5)
        return pb.GetPlanProgressResponse(
            theme=f"主题{request.quarter}",
            progress=[pb.TargetProgress(target=target, actual=2, percent=40.0)],
        )

    async def DefinePlan(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.plans.append(request)
        for index, target in enumerate(request.targets):
            if target.target <= 0:
                raise _invalid(f"targets[{index}].target", "must be positive")
        return pb.DefinePlanResponse(revision=2)


class Registry:
    async def ListZones(self, request: Any, metadata: Any, **_: Any) -> Any:
        return registry_pb2.ListZonesResponse(
            zones=[registry_pb2.Zone(zone_id="z-1", name="第一协作区")]
        )


class Stubs:
    def __init__(self) -> None:
        self.assessment = Assessment()
        self.registry = Registry()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[TestClient, Stubs]]:
    app = build_app(ConsoleSettings(), PlatformSettings(state_dir=tmp_path))
    app.state.stubs = stubs = Stubs()
    # Not entered as a context manager: the lifespan would dial the services and Kafka.
    yield TestClient(app, base_url="http://console.test"), stubs


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} on the page"
    return found.group(1)


def test_the_explain_page_links_each_part_to_its_cases(console: tuple[TestClient, Stubs]) -> None:
    client, _ = console
    dev_sign_in(client, LEADER)
    page = client.get(EXPLAIN)
    assert page.status_code == 200
    assert "第一协作区" in page.text and "61.50" in page.text
    assert page.text.count('href="/cases/clue-a"') == 2  # its part, and the cases behind it
    assert 'href="/cases/clue-b"' in page.text
    # A county leader does not mark; the form is for assessors.
    assert 'data-testid="mark-form"' not in page.text


def test_an_assessors_mark_is_one_call_and_a_refusal_is_shown_beside_its_field(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, ASSESSOR)
    page = client.get(EXPLAIN)
    assert 'data-testid="mark-form"' in page.text
    form = {
        "csrf_token": csrf_token(page.text),
        "quarter": "2026Q3",
        "idempotency_key": _hidden(page.text, "idempotency_key"),
        "points": "25",
        "reason": "办案质量高",
    }
    refused = client.post("/ranking/explain/zone/z-1/mark", data=form, follow_redirects=False)
    assert refused.status_code == 400
    errors = refused.text.split('id="points-errors"', 1)[1].split("</ul>", 1)[0]
    assert "must be 0..20" in errors
    # The form comes back as typed, with the same key: a retry cannot record twice.
    assert _hidden(refused.text, "idempotency_key") == form["idempotency_key"]
    assert "办案质量高" in refused.text
    done = client.post(
        "/ranking/explain/zone/z-1/mark", data={**form, "points": "18"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/ranking/explain/zone/z-1?quarter=2026Q3&marked=1"
    first, second = stubs.assessment.marks
    assert (second.points, second.reason, second.level) == (18.0, "办案质量高", pb.LEVEL_ZONE)
    assert (second.subject_id, second.quarter, second.county_id) == ("z-1", "2026Q3", "c-demo")
    assert second.idempotency_key == first.idempotency_key == form["idempotency_key"]


def test_points_that_are_not_a_number_are_refused_without_a_call(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, ASSESSOR)
    page = client.get(EXPLAIN)
    reply = client.post(
        "/ranking/explain/zone/z-1/mark",
        data={
            "csrf_token": csrf_token(page.text),
            "quarter": "2026Q3",
            "points": "很多",
            "reason": "x",
        },
        follow_redirects=False,
    )
    assert reply.status_code == 400 and "must be a number" in reply.text
    assert stubs.assessment.marks == []


def test_a_mark_without_the_csrf_token_is_refused(console: tuple[TestClient, Stubs]) -> None:
    client, stubs = console
    dev_sign_in(client, ASSESSOR)
    reply = client.post(
        "/ranking/explain/zone/z-1/mark",
        data={"quarter": "2026Q3", "points": "10", "reason": "x"},
        follow_redirects=False,
    )
    assert reply.status_code == 403
    assert stubs.assessment.marks == []


def test_a_campaign_is_shown_by_name_and_redefined_from_its_own_values(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, LEADER)
    page = client.get("/campaigns?campaign_id=camp-1")
    assert page.status_code == 200
    assert "惠民资金专项监督" in page.text and "贪污挪用" in page.text and "立案" in page.text
    assert 'value="2026-10-31"' in page.text  # the form starts from the campaign as it is
    form = {
        "csrf_token": csrf_token(page.text),
        "idempotency_key": _hidden(page.text, "idempotency_key"),
        "campaign_id": "camp-1",
        "name": "惠民资金专项监督",
        "domain": "poverty-alleviation-funds",
        "starts_on": "2026-03-01",
        "ends_on": "2026-12-31",
    }
    refused = client.post("/campaigns/define", data=form, follow_redirects=False)
    assert refused.status_code == 400
    assert "name at least one zone" in refused.text.split('id="zone_ids-errors"', 1)[1]
    assert 'value="2026-12-31"' in refused.text  # what was typed comes back
    done = client.post(
        "/campaigns/define", data={**form, "zone_ids": ["z-1"]}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/campaigns?campaign_id=camp-1&defined=1"
    last = stubs.assessment.campaigns[-1]
    assert (last.county_id, last.ends_on, list(last.zone_ids)) == ("c-demo", "2026-12-31", ["z-1"])
    assert last.idempotency_key == stubs.assessment.campaigns[0].idempotency_key


def test_the_campaign_page_lists_the_campaigns_the_user_may_see(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, "p-004")
    page = client.get("/campaigns")
    assert page.status_code == 200
    listed = page.text.split('data-testid="campaign-list"', 1)[1].split("</table>", 1)[0]
    # By name, linked to its results, its zones by name (an unknown one keeps its id).
    assert '<a href="/campaigns?campaign_id=camp-1">惠民资金专项监督</a>' in listed
    assert "第一协作区、z-9" in listed and "2026-03-01 – 2026-10-31" in listed
    assert [r.county_id for r in stubs.assessment.listed] == ["c-demo"]


def test_the_campaign_form_is_for_planners(console: tuple[TestClient, Stubs]) -> None:
    client, _ = console
    dev_sign_in(client, "p-004")  # a zone chief reads a campaign's results but does not define one
    page = client.get("/campaigns?campaign_id=camp-1")
    assert page.status_code == 200 and 'data-testid="campaign-form"' not in page.text


def _plan_form(page: str) -> dict[str, str]:
    """Every input and selected option of the plan form, as a browser would post them."""
    form = page.split('data-testid="plan-form"', 1)[1].split("</form>", 1)[0]
    values = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        values[name] = chosen.group(1) if chosen else ""
    return values


def test_a_plan_is_redefined_from_its_own_targets_and_a_refusal_lands_on_its_cell(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, LEADER)
    page = client.get("/plans?year=2026")
    assert page.status_code == 200
    form = _plan_form(page.text)
    # The plan's one line (z-1, cases_filed, 5 a quarter), then blank lines for new targets.
    assert (form["zone-0"], form["kpi-0"], form["target-0-3"]) == ("z-1", "cases_filed", "5")
    assert form["theme-2"] == "主题2" and form["zone-1"] == "" and form["target-1-1"] == ""
    # A whole number is checked here; a line with targets but no zone is refused here too.
    local = client.post(
        "/plans/define",
        data={**form, "target-0-2": "五", "target-1-1": "3"},
        follow_redirects=False,
    )
    assert local.status_code == 400 and stubs.assessment.plans == []
    assert "must be a whole number" in local.text.split('id="target-0-2-errors"', 1)[1]
    assert "choose a zone and an indicator" in local.text.split('id="zone-1-errors"', 1)[1]
    # Assessment's reason for targets[1] (the line's second quarter) is shown beside that cell.
    refused = client.post("/plans/define", data={**form, "target-0-2": "0"}, follow_redirects=False)
    assert refused.status_code == 400
    assert "must be positive" in refused.text.split('id="target-0-2-errors"', 1)[1]
    done = client.post(
        "/plans/define",
        data={**form, "zone-1": "z-1", "kpi-1": "clues_disposed", "target-1-4": "20"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/plans?year=2026&defined=1"
    sent = stubs.assessment.plans[-1]
    assert (sent.county_id, sent.year) == ("c-demo", 2026)
    assert [(t.quarter, t.zone_id, t.kpi, t.target) for t in sent.targets] == [
        (1, "z-1", "cases_filed", 5),
        (2, "z-1", "cases_filed", 5),
        (3, "z-1", "cases_filed", 5),
        (4, "z-1", "cases_filed", 5),
        (4, "z-1", "clues_disposed", 20),
    ]
    assert [(t.quarter, t.theme) for t in sent.themes][:2] == [(1, "主题1"), (2, "主题2")]
    assert sent.idempotency_key == stubs.assessment.plans[0].idempotency_key
