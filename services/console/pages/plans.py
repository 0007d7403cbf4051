"""Plans and campaigns: the year's work plan against actual, and a campaign's results."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from xiezuo.assessment.v1 import assessment_pb2

from services.console.county.binding import county_reads, kpi_labeller
from services.console.county.reads import QUARTERS
from services.console.county.views import YEAR, plan_lines, tallies
from services.console.session import signed_in
from services.console.web import NavLink, render, translator

PLAN_ROLES = frozenset(
    {"county_leadership", "commission_head", "assessor", "zone_chief", "deputy_chief"}
)
CAMPAIGN_ID_MAX = 64


async def plans(request: Request) -> Response:
    """Each quarter's theme and every zone's targets against what it reached."""
    user = signed_in(request)
    asked = request.query_params.get("year", "")
    year = int(asked) if YEAR.match(asked) else datetime.now(UTC).year
    reads = county_reads(request)
    names = await reads.zone_names(user.county_id)
    plan = await reads.plan_year(user.county_id, year)
    return render(
        request,
        "plans/plans.html",
        {
            "year": year,
            "plan": plan,
            "plan_lines": plan_lines(plan.progress, names),
            "quarters": QUARTERS,
            "kpi_label": kpi_labeller(request),
        },
    )


def _labels(request: Request, prefix: str, items: Iterable[assessment_pb2.Tally]) -> dict[str, str]:
    """Labels of tally keys in the user's language; a key with none keeps its code."""
    t = translator(request)
    labels = {item.key: t(f"{prefix}.{item.key}") for item in items}
    return {key: label for key, label in labels.items() if label != f"{prefix}.{key}"}


async def campaign(request: Request) -> Response:
    """A campaign's clues by category and zone, its cases' milestones and rectification."""
    user = signed_in(request)
    campaign_id = request.query_params.get("campaign_id", "").strip()[:CAMPAIGN_ID_MAX]
    context: dict[str, object] = {"campaign_id": campaign_id, "view": None}
    if campaign_id:
        reads = county_reads(request)
        names = await reads.zone_names(user.county_id)
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
    return render(request, "plans/campaign.html", context)


ROUTES: list[BaseRoute] = [
    Route("/plans", plans, methods=["GET"], name="plans"),
    Route("/campaigns", campaign, methods=["GET"], name="campaign"),
]
NAV = [
    NavLink("/plans", "plans.nav", PLAN_ROLES, order=65),
    NavLink("/campaigns", "plans.campaign_nav", PLAN_ROLES, order=66),
]
