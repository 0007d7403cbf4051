"""Operator commands over gRPC: one for every RPC the services offer (see coverage.py)."""

from __future__ import annotations

import getpass
import importlib
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from google.protobuf.json_format import ParseDict, ParseError
from rich.table import Table
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.cli import (
    casework,
    draws,
    joint,
    people,
    planning,
    projection,
    ranking,
    rectification,
    recusal,
    registry,
    report_handling,
    scores,
    training,
    transfers,
)
from services.cli.client import (
    EXIT_INVALID,
    JsonOption,
    ServiceCall,
    TimeoutOption,
    TokenOption,
    console,
    emit,
    enum_label,
    fail,
    resolve_token,
    stdout_console,
    when,
    write_profile,
)

profile_app = typer.Typer(help="Where the CLI keeps your token.", no_args_is_help=True)
reports_app = typer.Typer(help="Reports (信访举报) through intake.", no_args_is_help=True)
clues_app = typer.Typer(help="Clues (线索) in cases.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the operator command groups to the CLI."""
    app.add_typer(profile_app, name="profile")
    app.add_typer(reports_app, name="reports")
    app.add_typer(clues_app, name="clues")
    app.add_typer(draws.app, name="draws")
    # `xiezuo ranking PERIOD` is the league table (as before); `ranking explain` sits beside it.
    app.add_typer(scores.ranking_app, name="ranking")
    scores.ranking_app.command("show")(ranking.ranking)
    scores.ranking_app.command("explain")(scores.scores_explain)
    app.add_typer(scores.app, name="scores")
    planning.register(app)
    app.add_typer(rectification.app, name="rectification")
    app.add_typer(projection.app, name="projection")
    app.add_typer(people.app, name="people")
    app.add_typer(people.conflicts_app, name="conflicts")
    app.add_typer(recusal.app, name="recusal")
    app.add_typer(recusal.assignments_app, name="assignments")
    registry.register(app)
    app.add_typer(training.app, name="training")
    app.add_typer(training.attendance_app, name="attendance")
    report_handling.register(reports_app)
    clues_app.command("dispose")(casework.clues_dispose)
    clues_app.command("transfer")(transfers.clues_transfer)
    clues_app.command("trail")(transfers.clues_trail)
    # `xiezuo cases` and `xiezuo assessment` are the services' own CLIs (mounted by main.py
    # after this); the commands over gRPC join those groups so each domain has one name.
    cases_cli: typer.Typer = importlib.import_module("services.cases.cli").app
    cases_cli.command("show")(casework.cases_show)
    cases_cli.command("advance")(casework.cases_advance)
    cases_cli.command("list")(casework.cases_list)
    cases_cli.command("counts")(casework.cases_counts)
    cases_cli.command("link")(casework.cases_link)
    # One name for a case worked jointly: across townships, or with another county.
    joint.app.command("townships")(casework.cases_joint)
    cases_cli.add_typer(joint.app, name="joint")
    cases_cli.command("designate")(transfers.cases_designate)
    planning.register_assessment(importlib.import_module("services.assessment.cli").app)


@profile_app.command("set")
def profile_set(token: Annotated[str, typer.Option(help="Bearer token to remember")]) -> None:
    """Remember a token for later commands (file mode 0600)."""
    console.print(f"token saved to {write_profile(token)}")


@reports_app.command("submit")
def reports_submit(
    file: Annotated[Path, typer.Argument(help="JSON or YAML with SubmitReportRequest fields")],
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Submit a report; prints the receipt code, which is shown only this once."""
    try:
        data: Any = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"cannot read {file}: {exc}", EXIT_INVALID)
    if not isinstance(data, dict):
        fail(f"{file} must hold one mapping of SubmitReportRequest fields", EXIT_INVALID)
    data.setdefault("idempotency_key", str(uuid.uuid4()))
    try:
        request = ParseDict(data, intake_pb2.SubmitReportRequest())
    except ParseError as exc:
        fail(f"{file}: {exc}", EXIT_INVALID)
    call = ServiceCall("intake", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: intake_pb2_grpc.IntakeServiceStub(channel).SubmitReport(
            request, metadata=metadata, timeout=timeout
        )
    )
    emit(response, as_json=as_json)
    if not as_json and response.receipt_code:
        console.print(
            "[yellow]Give the receipt code to the reporter now: it is not stored.[/yellow]"
        )


@reports_app.command("status")
def reports_status(
    receipt_code: Annotated[str, typer.Argument(help="The 16-digit receipt code")],
    county: Annotated[str, typer.Option(help="County the report was filed in")],
    caller_ref: Annotated[
        str | None,
        typer.Option(help="Stable reference of who is asking (default: this desk's user)"),
    ] = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Where a report stands, asked with its receipt (front desk or reporter portal)."""
    receipt = intake_pb2.ReceiptCredentials(
        county_id=county,
        receipt_code=receipt_code,
        caller_ref=caller_ref or f"cli:{getpass.getuser()}",
    )
    call = ServiceCall("intake", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: intake_pb2_grpc.IntakeServiceStub(channel).GetReportStatus(
            intake_pb2.GetReportStatusRequest(receipt=receipt), metadata=metadata, timeout=timeout
        )
    )
    if as_json:
        emit(response, as_json=True)
        return
    out = stdout_console()
    out.print(
        "status    [bold]"
        + enum_label(intake_pb2.ReportStatus.Name(response.status), "REPORT_STATUS_")
        + "[/bold]"
    )
    if response.status_note:
        out.print(f"note      {response.status_note}", markup=False)
    out.print(f"received  {when(response.received_at)} UTC")
    out.print(f"messages  {response.officer_message_count} from officers")


@clues_app.command("show")
def clues_show(
    clue_id: Annotated[str, typer.Argument(help="The clue's id")],
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One clue with its disposal deadline."""
    call = ServiceCall("cases", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: cases_pb2_grpc.CaseServiceStub(channel).GetClue(
            cases_pb2.GetClueRequest(clue_id=clue_id), metadata=metadata, timeout=timeout
        )
    )
    emit(response.clue, as_json=as_json)


@clues_app.command("list")
def clues_list(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Only this zone")] = "",
    page_size: Annotated[int, typer.Option(help="Clues per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A page of the county's clues; prints the token for the next page."""
    call = ServiceCall("cases", resolve_token(token), timeout)
    request = cases_pb2.ListCluesRequest(
        county_id=county, zone_id=zone, page_size=page_size, page_token=page_token
    )
    response = call.run(
        lambda channel, metadata: cases_pb2_grpc.CaseServiceStub(channel).ListClues(
            request, metadata=metadata, timeout=timeout
        )
    )
    if as_json:
        emit(response, as_json=True)
        return
    table = Table(title=f"clues of {county}" + (f" / {zone}" if zone else ""))
    for column in ("clue", "zone", "township", "channel", "status", "disposal due"):
        table.add_column(column)
    for clue in response.clues:
        table.add_row(
            clue.clue_id,
            clue.zone_id,
            clue.township_id,
            clue.channel,
            cases_pb2.ClueStatus.Name(clue.status).removeprefix("CLUE_STATUS_").lower(),
            clue.disposal_due_at.ToDatetime().date().isoformat(),
        )
    stdout_console().print(table)
    if response.next_page_token:
        console.print(f"next page: --page-token {json.dumps(response.next_page_token)}")
