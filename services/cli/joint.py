"""`xiezuo cases joint ...`: a case worked jointly, across townships or with another county.

`townships` is cases' DeclareJointCase (registered from casework); `open|city-open|accept|
decline|close|show|list` are joint investigations with another county (collaboration's
JointCaseService).
"""

from __future__ import annotations

from typing import Annotated

import typer
from xiezuo.collaboration.v1 import joint_cases_pb2 as pb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc as pb_grpc

from services.cli.client import (
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    fresh_key,
)

app = typer.Typer(
    help="Joint cases: across further townships of your county (`townships`), or a joint "
    "investigation (联合审查调查) with another county (`open`, `city-open`, `accept`, `decline`, "
    "`close`, `show`, `list`).",
    no_args_is_help=True,
)
CountyOption = Annotated[str, typer.Option(help="Your county")]
TownshipOption = Annotated[
    str, typer.Option("--township", help="The subject's township in your county (never drawn)")
]
KindOption = Annotated[
    str, typer.Option(help="discipline, duty_violation or duty_crime (the network must cover it)")
]
ShareOption = Annotated[int, typer.Option(min=0, help="People drawn (0: the kind's default)")]


def _print(joint: pb.JointCase, response: object, as_json: bool) -> None:
    if as_json:
        emit(response, as_json=True)  # type: ignore[arg-type]
        return
    if joint.role == "city":
        typer.echo(
            f"joint case {joint.joint_id} ({joint.kind}, {joint.state}) opened by the city "
            f"between {joint.partner_county_id} ({joint.own_share}) and "
            f"{joint.second_county_id} ({joint.partner_share})"
        )
        return
    typer.echo(
        f"joint case {joint.joint_id} ({joint.kind or '-'}, {joint.role}, {joint.state}) with "
        f"{joint.partner_county_id}; your case {joint.case_id or '-'}; shares "
        f"{joint.own_share}+{joint.partner_share}"
    )
    if joint.decline_ground:
        typer.echo(f"declined: {joint.decline_ground}")
    if joint.outcome:
        typer.echo(f"closed by {joint.closed_by} at {joint.closed_at}: {joint.outcome}")
    typer.echo(f"your share: {', '.join(joint.own_member_ids) or 'not drawn yet'}")
    typer.echo(
        f"{joint.partner_county_id}'s share: "
        f"{', '.join(joint.partner_member_ids) or 'not received yet'}"
    )


@app.command("open")
def joint_open(
    case_id: Annotated[str, typer.Argument(help="Your county's case")],
    county: CountyOption,
    partner: Annotated[str, typer.Option(help="The county asked to join")],
    township: TownshipOption,
    kind: KindOption,
    own_share: ShareOption = 0,
    partner_share: ShareOption = 0,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Open a joint case with another county (county leadership); each draws its own share."""
    request = pb.OpenJointCaseRequest(
        county_id=county,
        partner_county_id=partner,
        case_id=case_id,
        subject_township_id=township,
        kind=kind,
        own_share=own_share,
        partner_share=partner_share,
        idempotency_key=fresh_key(idempotency_key),
    )
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "OpenJointCase", request, token, timeout
    )
    _print(response.joint_case, response, as_json)


@app.command("accept")
def joint_accept(
    joint_id: Annotated[str, typer.Argument(help="The joint case id")],
    county: CountyOption,
    case_id: Annotated[str, typer.Option("--case", help="Your county's own case")],
    township: TownshipOption,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Join a joint case another county opened (county leadership)."""
    request = pb.AcceptJointCaseRequest(
        joint_id=joint_id, county_id=county, case_id=case_id, subject_township_id=township
    )
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "AcceptJointCase", request, token, timeout
    )
    _print(response.joint_case, response, as_json)


@app.command("show")
def joint_show(
    joint_id: Annotated[str, typer.Argument(help="The joint case id")],
    county: CountyOption,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The joint team (both shares) and your own case id."""
    request = pb.GetJointCaseRequest(joint_id=joint_id, county_id=county)
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "GetJointCase", request, token, timeout
    )
    _print(response.joint_case, response, as_json)


@app.command("city-open")
def joint_city_open(
    first: Annotated[str, typer.Argument(help="The first county")],
    second: Annotated[str, typer.Argument(help="The second county")],
    city: Annotated[str, typer.Option(help="The city commission (the network's city id)")],
    kind: KindOption,
    first_share: ShareOption = 0,
    second_share: ShareOption = 0,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The city commission opens a joint case between two member counties; both must join."""
    request = pb.OpenCityJointCaseRequest(
        city_id=city,
        first_county_id=first,
        second_county_id=second,
        kind=kind,
        first_share=first_share,
        second_share=second_share,
        idempotency_key=fresh_key(idempotency_key),
    )
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "OpenCityJointCase", request, token, timeout
    )
    _print(response.joint_case, response, as_json)


@app.command("decline")
def joint_decline(
    joint_id: Annotated[str, typer.Argument(help="The joint case id")],
    county: CountyOption,
    ground: Annotated[str, typer.Option(help="Why (required; the other county reads it)")],
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Decline to join a joint case, with a ground (county leadership)."""
    request = pb.DeclineJointCaseRequest(joint_id=joint_id, county_id=county, ground=ground)
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "DeclineJointCase", request, token, timeout
    )
    _print(response.joint_case, response, as_json)


@app.command("close")
def joint_close(
    joint_id: Annotated[str, typer.Argument(help="The joint case id")],
    county: CountyOption,
    outcome: Annotated[str, typer.Option(help="concluded, referred or withdrawn")],
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Close a joint case with an outcome (either county's leadership); both teams are freed."""
    request = pb.CloseJointCaseRequest(joint_id=joint_id, county_id=county, outcome=outcome)
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "CloseJointCase", request, token, timeout
    )
    _print(response.joint_case, response, as_json)


@app.command("list")
def joint_list(
    county: Annotated[str, typer.Option(help="Your county (or the city's id)")],
    state: Annotated[str, typer.Option(help="Only this state")] = "",
    page_size: Annotated[int, typer.Option(min=0, max=200)] = 50,
    page_token: Annotated[str, typer.Option(help="From a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Your county's joint cases, by id (county leadership; the city commission its own)."""
    request = pb.ListJointCasesRequest(
        county_id=county, state=state, page_size=page_size, page_token=page_token
    )
    response = call(
        "collaboration", pb_grpc.JointCaseServiceStub, "ListJointCases", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
        return
    for joint in response.joint_cases:
        typer.echo(
            f"{joint.joint_id}  {joint.kind or '-':<15} {joint.role:<8} {joint.state:<9} "
            f"{joint.partner_county_id}  {len(joint.own_member_ids)}+"
            f"{len(joint.partner_member_ids)} people"
        )
    if response.next_page_token:
        typer.echo(f"next page: --page-token {response.next_page_token}")
