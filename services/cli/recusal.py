"""`xiezuo recusal request|decide` and `xiezuo assignments accept|decline` (staffing)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.staffing.v1 import staffing_pb2, staffing_pb2_grpc

from services.cli.client import (
    EXIT_INVALID,
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    choice,
    choices,
    emit,
    fail,
    fresh_key,
    stdout_console,
)

app = typer.Typer(help="Recusal (回避): a person stands aside from a case.", no_args_is_help=True)
assignments_app = typer.Typer(
    help="A drawn person's answer to their assignment.", no_args_is_help=True
)
Stub = staffing_pb2_grpc.StaffingServiceStub
DrawArg = Annotated[str, typer.Argument(help="The draw that picked you")]
RAISED_PREFIX = "RECUSAL_RAISED_BY_"


@app.command("request")
def recusal_request(
    case_id: Annotated[str, typer.Argument(help="The case")],
    person_id: Annotated[str, typer.Argument(help="The person who should stand aside")],
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Zone of the case")],
    ground: Annotated[
        str,
        typer.Option(
            help="The ground's code in the county's recusal grounds (rule data), e.g. "
            "close_relative_of_subject, witness, interest_in_matter; an unknown code is refused "
            "with the list"
        ),
    ],
    raised_by: Annotated[
        str,
        typer.Option(
            help="Who raises it: " + ", ".join(choices(staffing_pb2.RecusalRaisedBy, RAISED_PREFIX))
        ),
    ] = "staff_member",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Ask that a person stand aside from a case; a zone chief or the leadership decides."""
    request = staffing_pb2.RequestRecusalRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        zone_id=zone,
        case_id=case_id,
        person_id=person_id,
        recusal_ground_code=ground,
        raised_by=choice(staffing_pb2.RecusalRaisedBy, RAISED_PREFIX, raised_by, "--raised-by"),
    )
    response = call("staffing", Stub, "RequestRecusal", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"recusal {escape(response.recusal_id)} requested")


@app.command("decide")
def recusal_decide(
    recusal_id: Annotated[str, typer.Argument(help="The recusal request")],
    decision: Annotated[str, typer.Argument(help="grant or refuse")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Grant a recusal (the person leaves the team, a redraw follows) or refuse it."""
    granted = {"grant": True, "refuse": False}.get(decision)
    if granted is None:
        fail(f"DECISION {decision!r}: expected grant or refuse", EXIT_INVALID)
    request = staffing_pb2.DecideRecusalRequest(
        idempotency_key=fresh_key(idempotency_key), recusal_id=recusal_id, granted=granted
    )
    response = call("staffing", Stub, "DecideRecusal", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"recusal {escape(response.recusal_id)}: {escape(response.state)}")


@assignments_app.command("accept")
def assignments_accept(
    draw_id: DrawArg,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Accept the assignment a draw gave you."""
    request = staffing_pb2.AcceptAssignmentRequest(
        idempotency_key=fresh_key(idempotency_key), draw_id=draw_id
    )
    response = call("staffing", Stub, "AcceptAssignment", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"{escape(draw_id)}: {escape(response.state)}")


@assignments_app.command("decline")
def assignments_decline(
    draw_id: DrawArg,
    reason: Annotated[str, typer.Option(help="Why (mandatory)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Decline the assignment a draw gave you, with a reason; a redraw replaces you."""
    request = staffing_pb2.DeclineAssignmentRequest(
        idempotency_key=fresh_key(idempotency_key), draw_id=draw_id, reason=reason
    )
    response = call("staffing", Stub, "DeclineAssignment", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"{escape(draw_id)}: declined; redraw {escape(response.redraw_id)}")
