"""County board: the zones side by side with their names, the four forms, the plan against
actual by quarter, and exports for the city commission (built from what assessment answers)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from xiezuo.assessment.v1 import assessment_pb2

from services.console.county.binding import county_reads, kpi_labeller
from services.console.county.reads import QUARTERS
from services.console.county.views import (
    FourFormsRow,
    board_csv,
    download_name,
    neighbours,
    period_or,
    plan_csv,
    plan_lines,
    ranked_rows,
    year_of,
)
from services.console.session import signed_in
from services.console.web import NavLink, render

# County-level readers; a zone chief's own board is the zone board (casework).
COUNTY_ROLES = frozenset({"county_leadership", "commission_head", "assessor"})
ZONE_LEVEL = assessment_pb2.LEVEL_ZONE


def _period(request: Request) -> str:
    return period_or(request.query_params.get("period", ""), datetime.now(UTC).date())


def _summed(rows: list[FourFormsRow]) -> FourFormsRow:
    """The county's four forms: the zones' counts added (a person is counted in one zone)."""
    forms = tuple(sum(row.forms[i] for row in rows) for i in range(4))
    return FourFormsRow(sum(row.people for row in rows), (forms[0], forms[1], forms[2], forms[3]))


async def board(request: Request) -> Response:
    """The county at a glance for a quarter or a year."""
    user = signed_in(request)
    period = _period(request)
    reads = county_reads(request)
    names, ranking, plan = await asyncio.gather(
        reads.zone_names(user.county_id),
        reads.ranking(user.county_id, ZONE_LEVEL, period),
        reads.plan_year(user.county_id, year_of(period)),
    )
    rows = ranked_rows(ranking.entries, names)
    before, after = neighbours(period)
    return render(
        request,
        "county_board/board.html",
        {
            "period": period,
            "before": before,
            "after": after,
            # A year's score is a mean of quarters: explain the first quarter of that year.
            "explain_quarter": period if "Q" in period else f"{period}Q1",
            "year": year_of(period),
            "zones": rows,
            "rules_version": ranking.rules_version,
            "forms_total": _summed([row.four_forms for row in rows]),
            "plan": plan,
            "plan_lines": plan_lines(plan.progress, names),
            "quarters": QUARTERS,
            "kpi_label": kpi_labeller(request),
        },
    )


def _download(body: str, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


async def zones_csv(request: Request) -> Response:
    """The zones side by side as CSV, names beside ids (what the board shows)."""
    user = signed_in(request)
    period = _period(request)
    reads = county_reads(request)
    names, ranking = await asyncio.gather(
        reads.zone_names(user.county_id), reads.ranking(user.county_id, ZONE_LEVEL, period)
    )
    body = board_csv(ranked_rows(ranking.entries, names), period)
    # A byte-order mark so spreadsheet programs read the Chinese names as UTF-8.
    return _download(
        "\ufeff" + body,
        "text/csv; charset=utf-8",
        download_name(user.county_id, "zones", period, suffix="csv"),
    )


async def plan_export(request: Request) -> Response:
    """The year's plan against actual as CSV, names beside ids (what the board shows)."""
    user = signed_in(request)
    year = year_of(_period(request))
    reads = county_reads(request)
    names, plan = await asyncio.gather(
        reads.zone_names(user.county_id), reads.plan_year(user.county_id, year)
    )
    if not plan.defined:
        raise HTTPException(404, f"no work plan for {year}")
    body = plan_csv(plan_lines(plan.progress, names), year, plan.themes)
    return _download(
        "\ufeff" + body,
        "text/csv; charset=utf-8",
        download_name(user.county_id, "plan", str(year), suffix="csv"),
    )


async def report(request: Request) -> Response:
    """Assessment's own report for the period, as HTML (with charts) or CSV."""
    user = signed_in(request)
    period = _period(request)
    kind = request.path_params["kind"]
    if kind not in ("html", "csv"):
        raise HTTPException(404)
    exported = await county_reads(request).export_report(user.county_id, period)
    name = download_name(user.county_id, "report", period, suffix=kind)
    if kind == "html":
        return _download(exported.html, "text/html; charset=utf-8", name)
    return _download("\ufeff" + exported.csv, "text/csv; charset=utf-8", name)


ROUTES: list[BaseRoute] = [
    Route("/county", board, methods=["GET"], name="county_board"),
    Route("/county/export/zones.csv", zones_csv, methods=["GET"], name="county_zones_csv"),
    Route("/county/export/plan.csv", plan_export, methods=["GET"], name="county_plan_csv"),
    Route("/county/export/report.{kind:str}", report, methods=["GET"], name="county_report"),
]
NAV = [NavLink("/county", "county_board.nav", COUNTY_ROLES, order=50)]
