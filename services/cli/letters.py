"""`xiezuo letters send|list|show|approve|accept|decline|answer` (collaboration)."""

from __future__ import annotations

from typing import Annotated

import typer
from xiezuo.collaboration.v1 import collaboration_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc as pb_grpc

from services.cli.client import (
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    choice,
    choices,
    emit,
    enum_label,
    fresh_key,
    next_page,
    print_table,
    when,
)

app = typer.Typer(help="Assistance letters (协查函) between counties.", no_args_is_help=True)
Stub = pb_grpc.CollaborationServiceStub
LetterArg = Annotated[str, typer.Argument(help="The letter's id")]
KIND_PREFIX, STATE_PREFIX, DIRECTION_PREFIX = "LETTER_KIND_", "LETTER_STATE_", "LETTER_DIRECTION_"
COLUMNS = ("letter", "county", "other county", "kind", "state", "due", "requested")


def _row(letter: pb.Letter) -> tuple[str, ...]:
    return (
        letter.letter_id,
        letter.county_id,
        letter.counterpart_county_id,
        enum_label(pb.LetterKind.Name(letter.kind), KIND_PREFIX),
        enum_label(pb.LetterState.Name(letter.state), STATE_PREFIX),
        letter.due_date,
        when(letter.requested_at),
    )


def _show(letter: pb.Letter, as_json: bool, title: str) -> None:
    if as_json:
        emit(letter, as_json=True)
        return
    print_table(title, COLUMNS, [_row(letter)])
    if letter.question:
        typer.echo(f"question: {letter.question}")
    for name, value in sorted(letter.fields.items()):
        typer.echo(f"  {name}: {value}")
    if letter.decline_ground:
        typer.echo(f"declined: {letter.decline_ground}")
    if letter.findings:
        typer.echo(f"findings: {letter.findings}")
    for attachment in letter.attachments:
        typer.echo(f"  attachment {attachment.name} ({attachment.size_bytes} bytes)")
    if letter.team_draw_id:
        team = ", ".join(letter.team_person_ids) or "none"
        typer.echo(f"team (draw {letter.team_draw_id}): {team}")
        for reason in letter.team_unfillable_reasons:
            typer.echo(f"  unfillable: {reason}")


def _field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint="--field")
    return name.strip(), value


def _attachment(text: str) -> pb.Attachment:
    parts = text.split(":", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        raise typer.BadParameter(
            f"{text!r}: expected NAME:SHA256:SIZE:MEDIA_TYPE", param_hint="--attachment"
        )
    name, sha256, size, media_type = parts
    return pb.Attachment(name=name, sha256=sha256, size_bytes=int(size), media_type=media_type)


@app.command("send")
def send(
    case_id: Annotated[str, typer.Argument(help="The case the letter is asked from")],
    county: Annotated[str, typer.Option(help="Your county")],
    zone: Annotated[str, typer.Option(help="The case's zone")],
    to: Annotated[str, typer.Option(help="The county asked")],
    kind: Annotated[
        str, typer.Option(help="Kind: " + ", ".join(choices(pb.LetterKind, KIND_PREFIX)))
    ],
    question: Annotated[str, typer.Option(help="What the other county is asked")],
    field: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE, only names the kind allows; repeat")
    ] = None,
    excerpt: Annotated[
        str, typer.Option(help="Excerpt of the case file (kinds that allow one)")
    ] = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Draft a letter from a case; it leaves once the county leadership approves it."""
    request = pb.RequestLetterRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        zone_id=zone,
        case_id=case_id,
        target_county_id=to,
        kind=choice(pb.LetterKind, KIND_PREFIX, kind, "--kind"),
        question=question,
        fields=dict(_field(item) for item in field or []),
        excerpt=excerpt,
    )
    response = call("collaboration", Stub, "RequestLetter", request, token, timeout)
    _show(response.letter, as_json, "letter drafted (awaiting approval)")


@app.command("approve")
def approve(
    letter_id: LetterArg,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Approve a drafted letter (county leadership): it is signed and sent."""
    request = pb.ApproveLetterRequest(
        idempotency_key=fresh_key(idempotency_key), letter_id=letter_id
    )
    response = call("collaboration", Stub, "ApproveLetter", request, token, timeout)
    _show(response.letter, as_json, "letter sent")


def _decide(
    letter_id: str,
    accept: bool,
    ground: str,
    idempotency_key: str | None,
    token: str | None,
    as_json: bool,
    timeout: float,
    subject_township: str = "",
) -> None:
    request = pb.DecideLetterRequest(
        idempotency_key=fresh_key(idempotency_key),
        letter_id=letter_id,
        accept=accept,
        ground=ground,
        subject_township_id=subject_township,
    )
    response = call("collaboration", Stub, "DecideLetter", request, token, timeout)
    _show(response.letter, as_json, "letter accepted" if accept else "letter declined")


@app.command("accept")
def accept(
    letter_id: LetterArg,
    subject_township: Annotated[
        str, typer.Option(help="The subject's township here: nobody from it is drawn")
    ] = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Accept a received letter (the asked county's leadership); staffing draws its team."""
    _decide(letter_id, True, "", idempotency_key, token, as_json, timeout, subject_township)


@app.command("decline")
def decline(
    letter_id: LetterArg,
    ground: Annotated[str, typer.Option(help="Why the letter is declined")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Decline a received letter with a ground (the asked county's leadership)."""
    _decide(letter_id, False, ground, idempotency_key, token, as_json, timeout)


@app.command("answer")
def answer(
    letter_id: LetterArg,
    findings: Annotated[str, typer.Option(help="What was found")],
    attachment: Annotated[
        list[str] | None, typer.Option(help="NAME:SHA256:SIZE:MEDIA_TYPE; repeat")
    ] = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Answer an accepted letter with findings and attachment metadata."""
    request = pb.AnswerLetterRequest(
        idempotency_key=fresh_key(idempotency_key),
        letter_id=letter_id,
        findings=findings,
        attachments=[_attachment(item) for item in attachment or []],
    )
    response = call("collaboration", Stub, "AnswerLetter", request, token, timeout)
    _show(response.letter, as_json, "letter answered")


@app.command("show")
def show(
    letter_id: LetterArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One letter as your token may see it."""
    response = call(
        "collaboration", Stub, "GetLetter", pb.GetLetterRequest(letter_id=letter_id), token, timeout
    )
    _show(response.letter, as_json, f"letter {letter_id}")


@app.command("list")
def list_letters(
    county: Annotated[str, typer.Option(help="The county (city commission: empty for all)")] = "",
    direction: Annotated[
        str, typer.Option(help="outbound (asked by the county) or inbound (asked of it)")
    ] = "outbound",
    page_size: Annotated[int, typer.Option(help="Rows per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A county's letters on one side, oldest first."""
    request = pb.ListLettersRequest(
        county_id=county,
        direction=choice(pb.LetterDirection, DIRECTION_PREFIX, direction, "--direction"),
        page_size=page_size,
        page_token=page_token,
    )
    response = call("collaboration", Stub, "ListLetters", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(f"{direction} letters", COLUMNS, (_row(letter) for letter in response.letters))
    next_page(response.next_page_token)
