"""Plans and campaigns: the year's work plan against actual, the county's campaigns, and a
campaign's results."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from xiezuo.assessment.v1 import assessment_pb2

from services.assessment.domain.kpis import Kpi
from services.console.county.binding import county_reads, kpi_labeller
from services.console.county.reads import QUARTERS
from services.console.county.views import (
    CAMPAIGN_FIELDS,
    YEAR,
    beside_inputs,
    campaign_request,
    plan_form_lines,
    plan_lines,
    plan_request,
    posted_plan_lines,
    tallies,
)
from services.console.grpc_calls import Refused, call, stubs
from services.console.session import signed_in
from services.console.web import NavLink, render, translator

PLAN_ROLES = frozenset(
    {"county_leadership", "commission_head", "assessor", "zone_chief", "deputy_chief"}
)
CAMPAIGN_ID_MAX = 64
# Who defines plans and campaigns (assessment's planners); only a hint for the form.
PLANNER_ROLES = frozenset({"assessor", "county_leadership"})
# The indicators a target can name (assessment's counters; it checks them again).
PLAN_KPIS = tuple(kpi.value for kpi in Kpi)


async def _plans_page(
    request: Request,
    year: int,
    *,
    refusal: Refused | None = None,
    posted: Mapping[str, Any] | None = None,
) -> Response:
    """The year's plan against actual; for planners, the form redefining it."""
    user = signed_in(request)
    reads = county_reads(request)
    names, plan = await asyncio.gather(
        reads.zone_names(user.county_id), reads.plan_year(user.county_id, year)
    )
    lines = plan_lines(plan.progress, names)
    form = dict(posted or {})
    form.setdefault("idempotency_key", uuid.uuid4().hex)
    form.setdefault("themes", dict(plan.themes))
    form.setdefault("lines", plan_form_lines(lines))
    return render(
        request,
        "plans/plans.html",
        {
            "year": year,
            "plan": plan,
            "plan_lines": lines,
            "quarters": QUARTERS,
            "kpi_label": kpi_labeller(request),
            # Planners define plans; assessment checks the role again when they do.
            "may_define": user.has_role(*PLANNER_ROLES),
            "form": form,
            "zone_names": names,
            "kpis": PLAN_KPIS,
            "refusal": refusal,
            "errors": refusal.violations if refusal is not None else {},
            "defined": request.query_params.get("defined", ""),
        },
        status_code=refusal.status if refusal is not None else 200,
    )


async def plans(request: Request) -> Response:
    """Each quarter's theme and every zone's targets against what it reached."""
    asked = request.query_params.get("year", "")
    year = int(asked) if YEAR.match(asked) else datetime.now(UTC).year
    return await _plans_page(request, year)


async def define_plan(request: Request) -> Response:
    """Redefine the year's plan with DefinePlan; its reasons shown beside the inputs."""
    user = signed_in(request)
    posted = {name: str(value) for name, value in (await request.form()).items()}
    asked = posted.get("year", "")
    year = int(asked) if YEAR.match(asked) else datetime.now(UTC).year
    themes = {q: posted.get(f"theme-{q}", "").strip() for q in QUARTERS}
    lines = posted_plan_lines(posted)
    again = {"idempotency_key": posted.get("idempotency_key", ""), "themes": themes, "lines": lines}
    inputs: dict[str, str] = {}
    try:
        message, inputs = plan_request(
            user.county_id, year, themes, lines, posted.get("idempotency_key", "")
        )
        await call(request, stubs(request).assessment.DefinePlan, message)
    except Refused as refusal:
        refusal.violations = beside_inputs(refusal.violations, inputs)
        return await _plans_page(request, year, refusal=refusal, posted=again)
    return RedirectResponse(f"/plans?year={year}&defined=1", status_code=303)


def _labels(request: Request, prefix: str, items: Iterable[assessment_pb2.Tally]) -> dict[str, str]:
    """Labels of tally keys in the user's language; a key with none keeps its code."""
    t = translator(request)
    labels = {item.key: t(f"{prefix}.{item.key}") for item in items}
    return {key: label for key, label in labels.items() if label != f"{prefix}.{key}"}


async def _campaign_page(
    request: Request,
    campaign_id: str,
    *,
    refusal: Refused | None = None,
    form: Mapping[str, Any] | None = None,
) -> Response:
    """A campaign's results, and (for planners) the form defining or redefining one."""
    user = signed_in(request)
    reads = county_reads(request)
    names, listed = await asyncio.gather(
        reads.zone_names(user.county_id), _campaigns(request, user.county_id)
    )
    context: dict[str, Any] = {
        "campaign_id": campaign_id,
        "view": None,
        "zone_names": names,
        "campaigns": listed,
    }
    if campaign_id:
        view = await reads.campaign(user.county_id, campaign_id)
        context.update(
            view=view,
            zones=[names.get(zone, zone) for zone in view.zone_ids],
            tables=[
                tallies(
                    "plans.by_category",
                    view.clues_by_category,
                    _labels(request, "casework.category", view.clues_by_category),
                ),
                tallies("plans.by_zone", view.clues_by_zone, names),
                tallies(
                    "plans.milestones",
                    view.case_milestones,
                    _labels(request, "plans.milestone", view.case_milestones),
                ),
                tallies(
                    "plans.rectification",
                    view.rectification,
                    _labels(request, "plans.rectification_count", view.rectification),
                ),
            ],
        )
        if form is None:
            # Redefining starts from what the campaign is now.
            form = {
                "campaign_id": view.campaign_id,
                "name": view.name,
                "domain": view.domain,
                "starts_on": view.starts_on,
                "ends_on": view.ends_on,
                "zone_ids": list(view.zone_ids),
            }
    form = dict(form or {})
    form.setdefault("idempotency_key", uuid.uuid4().hex)
    form.setdefault("zone_ids", [])
    context.update(
        # Planners define campaigns; assessment checks the role again when they do.
        may_define=user.has_role(*PLANNER_ROLES),
        form=form,
        refusal=refusal,
        defined=request.query_params.get("defined", ""),
    )
    status = refusal.status if refusal is not None else 200
    return render(request, "plans/campaign.html", context, status_code=status)


async def _campaigns(request: Request, county_id: str) -> list[assessment_pb2.CampaignSummary]:
    """The county's campaigns the user may read (none when assessment lets them list none)."""
    try:
        reply = await call(
            request,
            stubs(request).assessment.ListCampaigns,
            assessment_pb2.ListCampaignsRequest(county_id=county_id),
        )
    except HTTPException as error:
        if error.status_code != 403:
            raise
        return []
    return list(reply.campaigns)


async def campaign(request: Request) -> Response:
    """A campaign's clues by category and zone, its cases' milestones and rectification."""
    campaign_id = request.query_params.get("campaign_id", "").strip()[:CAMPAIGN_ID_MAX]
    return await _campaign_page(request, campaign_id)


async def define_campaign(request: Request) -> Response:
    """Define (or redefine) a campaign with DefineCampaign; its reasons shown inline."""
    user = signed_in(request)
    posted = await request.form()
    values: dict[str, Any] = {name: str(posted.get(name, "")).strip() for name in CAMPAIGN_FIELDS}
    values["zone_ids"] = [str(zone) for zone in posted.getlist("zone_ids")]
    message = campaign_request(user.county_id, values, values["zone_ids"])
    try:
        await call(request, stubs(request).assessment.DefineCampaign, message)
    except Refused as refusal:
        return await _campaign_page(request, "", refusal=refusal, form=values)
    target = f"/campaigns?campaign_id={quote(message.campaign_id)}&defined=1"
    return RedirectResponse(target, status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/plans", plans, methods=["GET"], name="plans"),
    Route("/plans/define", define_plan, methods=["POST"], name="plan_define"),
    Route("/campaigns", campaign, methods=["GET"], name="campaign"),
    Route("/campaigns/define", define_campaign, methods=["POST"], name="campaign_define"),
]
NAV = [
    NavLink("/plans", "plans.nav", PLAN_ROLES, order=65),
    NavLink("/campaigns", "plans.campaign_nav", PLAN_ROLES, order=66),
]
