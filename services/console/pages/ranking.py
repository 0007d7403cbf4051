"""Ranking with explain-a-score: from a unit's score to its components, and from each
component to the cases behind it (links to the case file)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from services.console.county.binding import county_reads, kpi_labeller
from services.console.county.views import (
    LEVELS,
    MARK_FIELDS,
    QUARTER,
    cases_behind,
    component_rows,
    display_name,
    mark_request,
    neighbours,
    period_or,
    quarter_of,
    ranked_rows,
)
from services.console.grpc_calls import Refused, call, stubs
from services.console.session import signed_in
from services.console.web import NavLink, render

MARKING_ROLES = frozenset({"assessor"})
RANKING_ROLES = frozenset(
    {"county_leadership", "commission_head", "assessor", "zone_chief", "deputy_chief"}
)


def _level(value: str) -> str:
    if value not in LEVELS:
        raise HTTPException(404, f"no level {value!r}")
    return value


async def ranking(request: Request) -> Response:
    """One level ranked for a quarter or a year, each unit linked to why it scored so."""
    user = signed_in(request)
    level = _level(request.query_params.get("level", "zone"))
    period = period_or(request.query_params.get("period", ""), datetime.now(UTC).date())
    zone = request.query_params.get("zone", "")
    reads = county_reads(request)
    names, found = await asyncio.gather(
        reads.zone_names(user.county_id),
        reads.ranking(user.county_id, LEVELS[level], period, zone),
    )
    return render(
        request,
        "ranking/ranking.html",
        {
            "level": level,
            "levels": tuple(LEVELS),
            "period": period,
            "zone": zone,
            "zone_names": names,
            "rows": ranked_rows(found.entries, names),
            "ranked_units": found.ranked_units,
            "rules_version": found.rules_version,
            "truncated": found.truncated,
            # Assessment explains a quarter; a year's mean has no one explanation.
            "explain_quarter": period if QUARTER.match(period) else "",
        },
    )


def _quarter(value: str) -> str:
    return value if QUARTER.match(value) else quarter_of(datetime.now(UTC).date())


async def _explain_page(
    request: Request,
    level: str,
    subject_id: str,
    quarter: str,
    *,
    refusal: Refused | None = None,
    mark: Mapping[str, str] | None = None,
) -> Response:
    """The explain page; with a refused mark, the form again with the service's reasons."""
    user = signed_in(request)
    reads = county_reads(request)
    card, names = await asyncio.gather(
        reads.explain(user.county_id, LEVELS[level], subject_id, quarter),
        reads.zone_names(user.county_id),
    )
    components = component_rows(card)
    before, after = neighbours(quarter)
    return render(
        request,
        "ranking/explain.html",
        {
            "level": level,
            "subject_id": subject_id,
            "name": display_name(subject_id, card.name, names),
            "quarter": quarter,
            "before": before,
            "after": after,
            "card": card,
            "components": components,
            "cases": cases_behind(components),
            "kpi_label": kpi_labeller(request),
            # Only assessors mark; assessment checks the role again when they do.
            "may_mark": user.has_role(*MARKING_ROLES),
            "mark": dict(mark or {"idempotency_key": uuid.uuid4().hex}),
            "marked": request.query_params.get("marked", ""),
            "refusal": refusal,
        },
        status_code=refusal.status if refusal is not None else 200,
    )


async def explain(request: Request) -> Response:
    """A unit's score for a quarter, its components, and the cases behind them."""
    level = _level(request.path_params["level"])
    quarter = _quarter(request.query_params.get("quarter", ""))
    return await _explain_page(request, level, request.path_params["subject_id"], quarter)


async def record_mark(request: Request) -> Response:
    """An assessor's qualitative mark (定性评价) of the unit, as RecordQualitativeScore."""
    user = signed_in(request)
    level = _level(request.path_params["level"])
    subject_id = request.path_params["subject_id"]
    form = await request.form()
    values = {name: str(form.get(name, "")).strip() for name in MARK_FIELDS}
    quarter = _quarter(values["quarter"])
    try:
        message = mark_request(user.county_id, LEVELS[level], subject_id, quarter, values)
        await call(request, stubs(request).assessment.RecordQualitativeScore, message)
    except Refused as refusal:
        return await _explain_page(
            request, level, subject_id, quarter, refusal=refusal, mark=values
        )
    target = f"/ranking/explain/{level}/{quote(subject_id)}?quarter={quarter}&marked=1"
    return RedirectResponse(target, status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/ranking", ranking, methods=["GET"], name="ranking"),
    Route(
        "/ranking/explain/{level:str}/{subject_id:str}",
        explain,
        methods=["GET"],
        name="ranking_explain",
    ),
    Route(
        "/ranking/explain/{level:str}/{subject_id:str}/mark",
        record_mark,
        methods=["POST"],
        name="ranking_mark",
    ),
]
NAV = [NavLink("/ranking", "ranking.nav", RANKING_ROLES, order=55)]
