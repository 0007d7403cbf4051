"""`xiezuo cases joint ...`: a case worked jointly, across townships or with another county.

`townships` is cases' DeclareJointCase (registered from casework); `open|accept|show` are joint
investigations with another county (collaboration's JointCaseService).
"""

from __future__ import annotations

from typing import Annotated

import typer
from xiezuo.collaboration.v1 import joint_cases_pb2 as pb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc as pb_grpc

from services.cli.client import JsonOption, TimeoutOption, TokenOption, call, emit

app = typer.Typer(
    help="Joint cases: across further townships of your county (`townships`), or a joint "
    "investigation (联合审查调查) with another county (`open`, `accept`, `show`).",
    no_args_is_help=True,
)
CountyOption = Annotated[str, typer.Option(help="Your county")]
TownshipOption = Annotated[
    str, typer.Option("--township", help="The subject's township in your county (never drawn)")
]


def _print(joint: pb.JointCase, response: object, as_json: bool) -> None:
    if as_json:
        emit(response, as_json=True)  # type: ignore[arg-type]
        return
    typer.echo(
        f"joint case {joint.joint_id} ({joint.role}, {joint.state}) with "
        f"{joint.partner_county_id}; your case {joint.case_id or '-'}"
    )
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
