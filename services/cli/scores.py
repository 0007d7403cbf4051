"""`xiezuo scores show|explain|mark`: one unit's scorecard, why it scored so, assessors' marks."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc

from services.cli.client import (
    EXIT_INVALID,
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    enum_label,
    fail,
    fresh_key,
    print_table,
    stdout_console,
)

app = typer.Typer(
    help="Scorecards of zones, townships and staff (the ranking is `xiezuo ranking`).",
    no_args_is_help=True,
)
Stub = assessment_pb2_grpc.AssessmentServiceStub


class RankingGroup(TyperGroup):
    """`xiezuo ranking PERIOD ...` runs `ranking show`; `ranking explain ...` its sibling."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert `show` when the first word names no subcommand (a period, or an option)."""
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


ranking_app = typer.Typer(
    cls=RankingGroup,
    help="The league table (`ranking PERIOD --county C`) and why a unit scored so "
    "(`ranking explain`).",
    no_args_is_help=True,
)
LEVELS = ("zone", "township", "person")
SubjectArg = Annotated[str, typer.Argument(help="Zone, township or person id")]
QuarterArg = Annotated[str, typer.Argument(help='Quarter such as "2026Q3"')]
CountyOption = Annotated[str, typer.Option(help="County id")]
LevelOption = Annotated[str, typer.Option(help="zone, township or person")]


def level_of(level: str) -> assessment_pb2.Level.ValueType:
    """`zone` → LEVEL_ZONE; anything else exits 2."""
    if level not in LEVELS:
        fail(f"--level {level!r}: expected one of {', '.join(LEVELS)}", EXIT_INVALID)
    return assessment_pb2.Level.Value(f"LEVEL_{level.upper()}")


def _print_scorecard(card: assessment_pb2.Scorecard, *, with_events: bool) -> None:
    out = stdout_console()
    level = enum_label(assessment_pb2.Level.Name(card.level), "LEVEL_")
    out.print(
        f"[bold]{escape(card.subject_id)}[/bold] ({level}) {escape(card.quarter)}: "
        f"[bold]{card.total:.2f}[/bold] = {card.quantitative:.2f} quantitative "
        f"+ {card.qualitative:.2f} qualitative (rules {escape(card.rules_version)})"
    )
    columns = ["part", "kpi", "count", "of", "points"] + (["events"] if with_events else [])
    rows = []
    for part in card.components:
        row = [
            enum_label(assessment_pb2.ComponentKind.Name(part.kind), "COMPONENT_KIND_"),
            part.kpi or "-",
            str(part.count),
            f"{part.of_count} {part.of_kpi}" if part.of_kpi else "-",
            f"{part.points:+.2f}",
        ]
        if with_events:
            row.append(", ".join(part.event_ids) or "-")
        rows.append(row)
    print_table("how the score was reached", columns, rows)
    print_table("counts", ("kpi", "value"), ((c.kpi, str(c.value)) for c in card.counts))


@app.command("show")
def scores_show(
    subject_id: SubjectArg,
    quarter: QuarterArg,
    county: CountyOption,
    level: LevelOption = "zone",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A unit's scorecard for a quarter: counts, parts and total."""
    request = assessment_pb2.GetScorecardRequest(
        county_id=county, level=level_of(level), subject_id=subject_id, quarter=quarter
    )
    response = call("assessment", Stub, "GetScorecard", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        _print_scorecard(response.scorecard, with_events=False)


@app.command("explain")
def scores_explain(
    subject_id: SubjectArg,
    quarter: QuarterArg,
    county: CountyOption,
    level: LevelOption = "zone",
    events_per_kpi: Annotated[
        int, typer.Option(help="At most this many event ids per KPI (0: server default)")
    ] = 0,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Why a unit scored what it did: each part with the events behind its count."""
    request = assessment_pb2.ExplainScoreRequest(
        county_id=county,
        level=level_of(level),
        subject_id=subject_id,
        quarter=quarter,
        events_per_kpi=events_per_kpi,
    )
    response = call("assessment", Stub, "ExplainScore", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        _print_scorecard(response.scorecard, with_events=True)


@app.command("mark")
def scores_mark(
    subject_id: SubjectArg,
    quarter: QuarterArg,
    county: CountyOption,
    points: Annotated[float, typer.Option(help="Points, 0 up to the rules' qualitative share")],
    reason: Annotated[str, typer.Option(help="Why (shown to the unit assessed)")],
    level: LevelOption = "zone",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Record your qualitative mark (定性评价) of a unit for a quarter, as an assessor."""
    request = assessment_pb2.RecordQualitativeScoreRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        level=level_of(level),
        subject_id=subject_id,
        quarter=quarter,
        points=points,
        reason=reason,
    )
    response = call("assessment", Stub, "RecordQualitativeScore", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(
            f"{escape(subject_id)} {escape(quarter)}: {response.points:.2f} points recorded "
            f"for {escape(response.assessor)} (rules {escape(response.rules_version)})"
        )
