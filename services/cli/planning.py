"""`xiezuo plans define|progress`, `xiezuo campaigns define|show|list`, and the quarter's close and
export (`xiezuo assessment close-quarter|export`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc

from services.cli.client import (
    EXIT_INVALID,
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    fail,
    fresh_key,
    load_request,
    print_table,
    stdout_console,
)

plans_app = typer.Typer(help="The county's yearly work plan (工作计划).", no_args_is_help=True)
campaigns_app = typer.Typer(help="Special supervision campaigns (专项监督).", no_args_is_help=True)
Stub = assessment_pb2_grpc.AssessmentServiceStub
CountyOption = Annotated[str, typer.Option(help="County id")]

PLAN_EXAMPLE = """county_id: c-demo
year: 2026
themes: [{quarter: 1, theme: training and team building}]
targets: [{quarter: 1, zone_id: z-1, kpi: cases_filed, target: 5}]"""


def register(app: typer.Typer) -> None:
    """Add the planning command groups; close-quarter and export join `xiezuo assessment`."""
    app.add_typer(plans_app, name="plans")
    app.add_typer(campaigns_app, name="campaigns")


def register_assessment(assessment_app: typer.Typer) -> None:
    """The quarter's close and the report export, beside the service's own `assessment report`."""
    assessment_app.command("close-quarter")(close_quarter)
    assessment_app.command("export")(export)


@plans_app.command("define")
def plans_define(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON or YAML with DefinePlanRequest fields, e.g.\n\n" + PLAN_EXAMPLE,
        ),
    ],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Define (or redefine) a year's plan: quarterly themes and each zone's KPI targets."""
    request = load_request(
        file,
        assessment_pb2.DefinePlanRequest(),
        defaults={"idempotency_key": fresh_key(idempotency_key)},
    )
    response = call("assessment", Stub, "DefinePlan", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(
            f"plan {escape(request.county_id)} {request.year}: revision {response.revision}"
        )


@plans_app.command("progress")
def plans_progress(
    county: CountyOption,
    year: Annotated[int, typer.Option(help="Year planned")],
    quarter: Annotated[int, typer.Option(help="Quarter, 1..4")],
    zone: Annotated[str, typer.Option(help="Only this zone's targets")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Progress towards the quarter's targets: counted so far, percent, met or not."""
    request = assessment_pb2.GetPlanProgressRequest(
        county_id=county, year=year, quarter=quarter, zone_id=zone
    )
    response = call("assessment", Stub, "GetPlanProgress", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    stdout_console().print(f"{year}Q{quarter} theme: {escape(response.theme)}")
    print_table(
        "targets",
        ("zone", "kpi", "target", "actual", "%", "met"),
        (
            (
                p.target.zone_id,
                p.target.kpi,
                str(p.target.target),
                str(p.actual),
                f"{p.percent:.0f}",
                "yes" if p.met else "no",
            )
            for p in response.progress
        ),
    )


@campaigns_app.command("define")
def campaigns_define(
    campaign_id: Annotated[str, typer.Argument(help="The id reports quote (campaign_id)")],
    county: CountyOption,
    name: Annotated[str, typer.Option(help="Display name")],
    domain: Annotated[str, typer.Option(help="Domain supervised, e.g. rural-revitalisation")],
    starts_on: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")],
    ends_on: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD")],
    zone: Annotated[list[str], typer.Option(help="A zone taking part (repeatable)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Define a campaign; reports quoting its id are counted under it."""
    request = assessment_pb2.DefineCampaignRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        campaign_id=campaign_id,
        name=name,
        domain=domain,
        starts_on=starts_on,
        ends_on=ends_on,
        zone_ids=zone,
    )
    response = call("assessment", Stub, "DefineCampaign", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"campaign {escape(response.campaign_id)} defined")


@campaigns_app.command("show")
def campaigns_show(
    campaign_id: Annotated[str, typer.Argument(help="The campaign")],
    county: CountyOption,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A campaign's clues by category and zone, its cases' milestones and rectification."""
    request = assessment_pb2.GetCampaignViewRequest(county_id=county, campaign_id=campaign_id)
    response = call("assessment", Stub, "GetCampaignView", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    stdout_console().print(
        f"[bold]{escape(response.campaign_id)}[/bold]  {escape(response.name)} "
        f"({escape(response.domain)}), {escape(response.starts_on)} – {escape(response.ends_on)}, "
        f"zones {escape(', '.join(response.zone_ids))}"
    )
    for title, tallies in (
        ("clues by category", response.clues_by_category),
        ("clues by zone", response.clues_by_zone),
        ("case milestones", response.case_milestones),
        ("rectification", response.rectification),
    ):
        print_table(title, ("", "count"), ((t.key, str(t.count)) for t in tallies))


@campaigns_app.command("list")
def campaigns_list(
    county: CountyOption,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The county's campaigns you may read, latest first (a zone leader: their zones')."""
    request = assessment_pb2.ListCampaignsRequest(county_id=county)
    response = call("assessment", Stub, "ListCampaigns", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        "campaigns",
        ("campaign", "name", "domain", "from", "to", "zones"),
        (
            (c.campaign_id, c.name, c.domain, c.starts_on, c.ends_on, ", ".join(c.zone_ids))
            for c in response.campaigns
        ),
    )


def close_quarter(
    quarter: Annotated[str, typer.Argument(help='An ended quarter such as "2026Q3"')],
    county: CountyOption,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Close an ended quarter: publish every unit's scorecard (ScorecardPublished)."""
    request = assessment_pb2.CloseQuarterRequest(
        idempotency_key=fresh_key(idempotency_key), county_id=county, quarter=quarter
    )
    response = call("assessment", Stub, "CloseQuarter", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(
            f"{escape(county)} {escape(quarter)} closed: {response.published} scorecards "
            f"published (rules {escape(response.rules_version)})"
        )


def export(
    county: CountyOption,
    quarter: Annotated[str, typer.Option(help="Quarter such as 2026Q3")] = "",
    year: Annotated[int, typer.Option(help="A whole year such as 2026 instead")] = 0,
    zone: Annotated[
        str, typer.Option(help="Only this zone's units (required of a zone chief)")
    ] = "",
    out: Annotated[Path, typer.Option(help="Directory for report.html and scorecards.csv")] = Path(
        "."
    ),
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Fetch the quarter's or year's report from the service (audited) into report.html and CSV."""
    if bool(quarter) == bool(year):
        fail("give --quarter or --year (one of them)", EXIT_INVALID)
    request = assessment_pb2.ExportReportRequest(
        county_id=county, quarter=quarter, year=year, zone_id=zone
    )
    response = call("assessment", Stub, "ExportReport", request, token, timeout)
    out.mkdir(parents=True, exist_ok=True)
    html, table = out / "report.html", out / "scorecards.csv"
    html.write_text(response.html, encoding="utf-8")
    table.write_text(response.csv, encoding="utf-8")
    if as_json:
        print(json.dumps({"html": str(html), "csv": str(table)}))
    else:
        stdout_console().print(f"wrote {escape(str(html))} and {escape(str(table))}")
