"""`xiezuo ranking`: the quarter's league table of zones, townships or staff."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc

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
    print_table,
    resolve_token,
)

LEVELS = ("zone", "township", "person")


def ranking(
    period: Annotated[str, typer.Argument(help='A quarter such as "2026Q3", or a year "2026"')],
    county: Annotated[str, typer.Option(help="County id")],
    level: Annotated[str, typer.Option(help="zone, township or person")] = "zone",
    zone: Annotated[str, typer.Option(help="Only units counted in this zone")] = "",
    page_size: Annotated[int, typer.Option(help="Entries per page")] = 100,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Units of one level ranked for a quarter, with the reward and correction lists."""
    if level not in LEVELS:
        fail(f"--level {level!r}: expected one of {', '.join(LEVELS)}", EXIT_INVALID)
    request = assessment_pb2.GetRankingRequest(
        county_id=county,
        level=assessment_pb2.Level.Value(f"LEVEL_{level.upper()}"),
        period=period,
        zone_id=zone,
        page_size=page_size,
        page_token=page_token,
    )
    call = ServiceCall("assessment", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: assessment_pb2_grpc.AssessmentServiceStub(channel).GetRanking(
            request, metadata=metadata, timeout=timeout
        )
    )
    if as_json:
        emit(response, as_json=True)
        return
    console.print(
        f"{response.ranked_units} {level}s ranked in {county}, rules {response.rules_version}"
    )
    # Zones and townships show the people they dealt with in the four forms (四种形态), f1-f4.
    forms = level != "person"
    print_table(
        f"{level} ranking, {period}",
        ("rank", level, "name", "zones", "total", "list")
        + (("f1", "f2", "f3", "f4") if forms else ()),
        (
            (
                str(entry.rank),
                entry.subject_id,
                entry.name,
                ", ".join(entry.zone_ids),
                f"{entry.total:.2f}",
                enum_label(assessment_pb2.Tier.Name(entry.tier), "TIER_"),
            )
            + (
                tuple(str(getattr(entry.four_forms, f"form_{form}")) for form in (1, 2, 3, 4))
                if forms
                else ()
            )
            for entry in response.entries
        ),
    )
    if response.next_page_token:
        console.print(f"next page: --page-token {json.dumps(response.next_page_token)}")
