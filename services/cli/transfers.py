"""`xiezuo clues transfer|trail` and `xiezuo cases designate` (collaboration's TransferService)."""

from __future__ import annotations

from typing import Annotated

import typer
from xiezuo.collaboration.v1 import transfers_pb2 as pb
from xiezuo.collaboration.v1 import transfers_pb2_grpc as pb_grpc

from services.cli.client import (
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    fresh_key,
    when,
)

FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        help="NAME=VALUE, only names the transfer allowlist lists (subject_name and "
        "allegation_category required); repeat",
    ),
]
ExcerptOption = Annotated[
    str, typer.Option(help="A passage of the clue you chose (never the report text)")
]


def _fields(items: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for text in items or []:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint="--field")
        fields[name.strip()] = value
    return fields


def _print(transfer_id: str, version: int, what: str, response: object, as_json: bool) -> None:
    if as_json:
        emit(response, as_json=True)  # type: ignore[arg-type]
        return
    typer.echo(f"{what}: {transfer_id} (allowlist version {version})")


def clues_transfer(
    county: Annotated[str, typer.Option(help="Your county")],
    to: Annotated[str, typer.Option(help="The county with jurisdiction over the subject")],
    field: FieldOption = None,
    excerpt: ExcerptOption = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Hand a clue to another county (county leadership): it arrives there as a new clue."""
    request = pb.TransferClueRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        target_county_id=to,
        fields=_fields(field),
        excerpt=excerpt,
    )
    response = call(
        "collaboration", pb_grpc.TransferServiceStub, "TransferClue", request, token, timeout
    )
    _print(response.transfer_id, response.allowlist_version, "clue transferred", response, as_json)


def cases_designate(
    from_county: Annotated[str, typer.Option("--from", help="The county holding the clue")],
    to: Annotated[str, typer.Option(help="The county designated to handle it")],
    field: FieldOption = None,
    excerpt: ExcerptOption = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Designate another county to handle a clue (指定管辖; city commission)."""
    request = pb.DesignateJurisdictionRequest(
        idempotency_key=fresh_key(idempotency_key),
        from_county_id=from_county,
        target_county_id=to,
        fields=_fields(field),
        excerpt=excerpt,
    )
    response = call(
        "collaboration",
        pb_grpc.TransferServiceStub,
        "DesignateJurisdiction",
        request,
        token,
        timeout,
    )
    _print(response.transfer_id, response.allowlist_version, "designated", response, as_json)


def clues_trail(
    transfer_id: Annotated[str, typer.Argument(help="The transfer id the transfer returned")],
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The read-only trail of a clue your county handed over: stage and decision, nothing more."""
    request = pb.GetTransferTrailRequest(transfer_id=transfer_id)
    response = call(
        "collaboration", pb_grpc.TransferServiceStub, "GetTransferTrail", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
        return
    typer.echo(
        f"{response.mode} {response.transfer_id}: {response.from_county_id} → "
        f"{response.target_county_id}, sent {when(response.sent_at)}"
    )
    if not response.steps:
        typer.echo("no step reported yet")
    for step in response.steps:
        decision = f" ({step.decision})" if step.decision else ""
        typer.echo(f"{when(step.at)}  {step.stage}{decision}")
