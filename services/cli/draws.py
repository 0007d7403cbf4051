"""`xiezuo draws explain|replay|override`: why a team was drawn, proof it was fair, overrides."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.staffing.v1 import staffing_pb2, staffing_pb2_grpc

from services.cli.client import (
    IdempotencyOption,
    JsonOption,
    ServiceCall,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    fresh_key,
    print_table,
    resolve_token,
    stdout_console,
    when,
)

app = typer.Typer(help="Team draws (随机抽取) recorded by staffing.", no_args_is_help=True)
DrawArg = Annotated[str, typer.Argument(help="The draw's id (a case's TeamAssigned step names it)")]
# A replay that does not reproduce the record is a finding, not a usage error.
EXIT_REPLAY_MISMATCH = 7


@app.command("explain")
def draws_explain(
    draw_id: DrawArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Candidates after each filter, who was excluded and why, the seed and the team."""
    call = ServiceCall("staffing", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: staffing_pb2_grpc.StaffingServiceStub(channel).ExplainDraw(
            staffing_pb2.ExplainDrawRequest(draw_id=draw_id), metadata=metadata, timeout=timeout
        )
    )
    if as_json:
        emit(response, as_json=True)
        return
    draw = response.draw
    out = stdout_console()
    out.print(
        f"[bold]{escape(draw.draw_id)}[/bold]  case {escape(draw.case_id)}, "
        f"{escape(draw.stage)} team, round {draw.round} ({escape(draw.cause)})"
    )
    out.print(f"  drawn at  {when(draw.drawn_at)}")
    out.print(f"  algorithm {escape(draw.algorithm_version)}, rules {escape(draw.rules_version)}")
    out.print(f"  seed      {escape(draw.seed)}")
    out.print(f"  team      {escape(', '.join(draw.member_person_ids) or '(unfillable)')}")
    for reason in draw.unfillable_reasons:
        out.print(f"  [red]unfillable:[/red] {escape(reason)}")
    if draw.override_reason:
        out.print(f"  override: {escape(draw.override_reason)}")
    print_table(
        "candidates after each filter",
        ("filter", "remaining", "people"),
        (
            (s.name, str(len(s.remaining_person_ids)), ", ".join(s.remaining_person_ids))
            for s in draw.stages
        ),
    )
    print_table(
        "excluded",
        ("person", "reason", "detail"),
        ((e.person_id, e.reason, e.detail) for e in draw.exclusions),
    )


@app.command("replay")
def draws_replay(
    draw_id: DrawArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Recompute a draw from its record; exits 7 when it does not reproduce."""
    call = ServiceCall("staffing", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: staffing_pb2_grpc.StaffingServiceStub(channel).ReplayDraw(
            staffing_pb2.ReplayDrawRequest(draw_id=draw_id), metadata=metadata, timeout=timeout
        )
    )
    if as_json:
        emit(response, as_json=True)
    else:
        out = stdout_console()
        verdict = "[green]reproduced[/green]" if response.matches else "[red]DIFFERS[/red]"
        out.print(f"{escape(draw_id)}: {verdict}")
        out.print(f"  seed genuine  {'yes' if response.seed_genuine else 'NO'}")
        out.print(f"  hash intact   {'yes' if response.hash_intact else 'NO'}")
        out.print(f"  recomputed    {escape(', '.join(response.recomputed_member_person_ids))}")
        for difference in response.differences:
            out.print(f"  [red]difference:[/red] {escape(difference)}")
    if not (response.matches and response.seed_genuine and response.hash_intact):
        raise typer.Exit(EXIT_REPLAY_MISMATCH)


@app.command("override")
def draws_override(
    draw_id: DrawArg,
    member: Annotated[
        list[str], typer.Option(help="A person of the team set instead (repeatable; first leads)")
    ],
    reason: Annotated[str, typer.Option(help="Why the draw is overridden (mandatory)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A zone chief sets the team instead of the draw, with a reason (recorded and audited)."""
    request = staffing_pb2.OverrideDrawRequest(
        idempotency_key=fresh_key(idempotency_key),
        draw_id=draw_id,
        member_person_ids=member,
        reason=reason,
    )
    response = call(
        "staffing", staffing_pb2_grpc.StaffingServiceStub, "OverrideDraw", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"{escape(draw_id)}: overridden by {escape(response.override_id)}")
