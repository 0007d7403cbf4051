"""Handling a report after it arrives: acceptance, duplicates, the reporter channel, identity.

`xiezuo reports accept|reject|forward|duplicates|duplicate|message|messages|add-info|feedback`
and `xiezuo reports reveal-identity request|decide|read`.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.cli.client import (
    EXIT_INVALID,
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    choice,
    choices,
    console,
    emit,
    enum_label,
    fail,
    fresh_key,
    next_page,
    print_table,
    stdout_console,
    when,
)

Stub = intake_pb2_grpc.IntakeServiceStub
ReportArg = Annotated[str, typer.Argument(help="The report's id (SubmitReport's report_id)")]
EffectiveAtOption = Annotated[
    datetime | None,
    typer.Option(
        help="Back-entry (补录): when it was done on paper, UTC (e.g. 2026-03-05T09:30:00); "
        "needs a token with the back_entry role"
    ),
]
ReceiptOption = Annotated[
    str, typer.Option(help="The reporter's 16-digit receipt code (reporter side)")
]
CountyOption = Annotated[str, typer.Option(help="County the report was filed in (with --receipt)")]
CallerRefOption = Annotated[
    str | None,
    typer.Option(help="Stable reference of who is asking (default: this desk's user)"),
]

reveal_app = typer.Typer(
    help="Seeing a real-name reporter's identity: request, custodian's decision, one audited read.",
    no_args_is_help=True,
)


def register(reports_app: typer.Typer) -> None:
    """Add the report-handling commands to `xiezuo reports`."""
    for name, command in (
        ("accept", reports_accept),
        ("reject", reports_reject),
        ("forward", reports_forward),
        ("duplicates", reports_duplicates),
        ("duplicate", reports_duplicate),
        ("message", reports_message),
        ("messages", reports_messages),
        ("add-info", reports_add_info),
        ("feedback", reports_feedback),
    ):
        reports_app.command(name)(command)
    reports_app.add_typer(reveal_app, name="reveal-identity")


def _moment(effective_at: datetime | None) -> datetime | None:
    if effective_at is None:
        return None
    return effective_at if effective_at.tzinfo else effective_at.replace(tzinfo=UTC)


def _decide(
    request: intake_pb2.DecideAcceptanceRequest,
    effective_at: datetime | None,
    token: str | None,
    as_json: bool,
    timeout: float,
) -> None:
    moment = _moment(effective_at)
    if moment is not None:
        request.effective_at.FromDatetime(moment)
    response = call("intake", Stub, "DecideAcceptance", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    status = enum_label(intake_pb2.ReportStatus.Name(response.status), "REPORT_STATUS_")
    stdout_console().print(f"{escape(request.report_id)}: the reporter now sees [bold]{status}[/]")


def reports_accept(
    report_id: ReportArg,
    reason: Annotated[str, typer.Option(help="What the reporter is told (no identity)")] = "",
    effective_at: EffectiveAtOption = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Accept a report (受理): it is handled as a clue."""
    request = intake_pb2.DecideAcceptanceRequest(
        report_id=report_id,
        outcome=intake_pb2.ACCEPTANCE_OUTCOME_ACCEPT,
        reason=reason,
        idempotency_key=fresh_key(idempotency_key),
    )
    _decide(request, effective_at, token, as_json, timeout)


def reports_reject(
    report_id: ReportArg,
    ground: Annotated[
        str,
        typer.Option(
            help="Why not accepted: "
            + ", ".join(choices(intake_pb2.RejectionGround, "REJECTION_GROUND_"))
        ),
    ],
    reason: Annotated[str, typer.Option(help="Explanation told to the reporter (no identity)")],
    effective_at: EffectiveAtOption = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Do not accept a report (不予受理), on a ground, with a reason told to the reporter."""
    request = intake_pb2.DecideAcceptanceRequest(
        report_id=report_id,
        outcome=intake_pb2.ACCEPTANCE_OUTCOME_NOT_ACCEPT,
        rejection_ground=choice(
            intake_pb2.RejectionGround, "REJECTION_GROUND_", ground, "--ground"
        ),
        reason=reason,
        idempotency_key=fresh_key(idempotency_key),
    )
    _decide(request, effective_at, token, as_json, timeout)


def reports_forward(
    report_id: ReportArg,
    to: Annotated[str, typer.Option("--to", help="The body at the right level (转办)")],
    reason: Annotated[str, typer.Option(help="Explanation told to the reporter")] = "",
    effective_at: EffectiveAtOption = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Forward a report to the body managing the subject's cadre level."""
    request = intake_pb2.DecideAcceptanceRequest(
        report_id=report_id,
        outcome=intake_pb2.ACCEPTANCE_OUTCOME_FORWARD,
        forward_to_body=to,
        reason=reason,
        idempotency_key=fresh_key(idempotency_key),
    )
    _decide(request, effective_at, token, as_json, timeout)


def _candidate_row(candidate: intake_pb2.DuplicateCandidate) -> tuple[str, ...]:
    return (
        candidate.candidate_id,
        candidate.zone_id,
        f"{candidate.report_id} / {candidate.clue_id}",
        f"{candidate.similar_report_id} / {candidate.similar_clue_id}",
        candidate.reason,
        when(candidate.flagged_at),
        enum_label(intake_pb2.DuplicateState.Name(candidate.state), "DUPLICATE_STATE_"),
    )


CANDIDATE_COLUMNS = ("flag", "zone", "report / clue", "looks like", "why", "flagged", "state")


def reports_duplicates(
    county: Annotated[str, typer.Option(help="County id")],
    pending_only: Annotated[bool, typer.Option(help="Only flags awaiting a decision")] = False,
    page_size: Annotated[int, typer.Option(help="Flags per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Reports flagged as near-duplicates of an earlier one, oldest first."""
    request = intake_pb2.ListDuplicateCandidatesRequest(
        county_id=county, pending_only=pending_only, page_size=page_size, page_token=page_token
    )
    response = call("intake", Stub, "ListDuplicateCandidates", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    rows = (_candidate_row(c) for c in response.candidates)
    print_table(f"near-duplicates in {county}", CANDIDATE_COLUMNS, rows)
    next_page(response.next_page_token)


def reports_duplicate(
    candidate_id: Annotated[str, typer.Argument(help="The flag's id (from `reports duplicates`)")],
    decision: Annotated[
        str,
        typer.Argument(
            help="link (the same matter) or keep_separate (a different matter)",
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Decide a near-duplicate: link it to the similar clue or keep it separate (once)."""
    request = intake_pb2.DecideDuplicateRequest(
        candidate_id=candidate_id,
        decision=choice(intake_pb2.DuplicateDecision, "DUPLICATE_DECISION_", decision, "DECISION"),
        reason=reason,
        idempotency_key=fresh_key(idempotency_key),
    )
    response = call("intake", Stub, "DecideDuplicate", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table("decided", CANDIDATE_COLUMNS, [_candidate_row(response.candidate)])


def _access(
    report_id: str, receipt: str, county: str, caller_ref: str | None
) -> intake_pb2.ReporterChannelAccess:
    """The officer's side (--report) or the reporter's (--receipt with --county), not both."""
    if bool(report_id) == bool(receipt):
        fail("give --report (an officer) or --receipt with --county (the reporter)", EXIT_INVALID)
    if report_id:
        return intake_pb2.ReporterChannelAccess(report_id=report_id)
    if not county:
        fail("--receipt needs --county, the county the report was filed in", EXIT_INVALID)
    return intake_pb2.ReporterChannelAccess(
        receipt=intake_pb2.ReceiptCredentials(
            county_id=county,
            receipt_code=receipt,
            caller_ref=caller_ref or f"cli:{getpass.getuser()}",
        )
    )


ReportOption = Annotated[str, typer.Option("--report", help="The report's id (officer side)")]


def reports_message(
    body: Annotated[str, typer.Option(help="The message (stored encrypted)")],
    report_id: ReportOption = "",
    receipt: ReceiptOption = "",
    county: CountyOption = "",
    caller_ref: CallerRefOption = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Write on a report's two-way channel, as an officer or as the reporter."""
    request = intake_pb2.SendReporterMessageRequest(
        access=_access(report_id, receipt, county, caller_ref),
        body=body,
        idempotency_key=fresh_key(idempotency_key),
    )
    response = call("intake", Stub, "SendReporterMessage", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"message {escape(response.message_id)} sent")


def reports_messages(
    report_id: ReportOption = "",
    receipt: ReceiptOption = "",
    county: CountyOption = "",
    caller_ref: CallerRefOption = None,
    page_size: Annotated[int, typer.Option(help="Messages per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A report's messages, oldest first (officers are never named to the reporter)."""
    request = intake_pb2.ListReporterMessagesRequest(
        access=_access(report_id, receipt, county, caller_ref),
        page_size=page_size,
        page_token=page_token,
    )
    response = call("intake", Stub, "ListReporterMessages", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        "messages",
        ("sent", "from", "message"),
        (
            (
                when(m.sent_at),
                enum_label(intake_pb2.MessageAuthor.Name(m.author), "MESSAGE_AUTHOR_"),
                m.body,
            )
            for m in response.messages
        ),
    )
    next_page(response.next_page_token)


def _attachments(values: list[str]) -> list[intake_pb2.AttachmentMetadata]:
    attachments = []
    for value in values:
        sha256, _, rest = value.partition(":")
        size, _, media_type = rest.partition(":")
        if not sha256 or not size.isdigit() or not media_type:
            fail(
                f"--attachment {value!r}: expected SHA256:SIZE:MEDIA_TYPE, "
                "e.g. 9f86…08:20480:image/jpeg",
                EXIT_INVALID,
            )
        attachments.append(
            intake_pb2.AttachmentMetadata(
                sha256=sha256, size_bytes=int(size), media_type=media_type
            )
        )
    return attachments


def reports_add_info(
    receipt_code: Annotated[str, typer.Argument(help="The reporter's 16-digit receipt code")],
    county: Annotated[str, typer.Option(help="County the report was filed in")],
    content: Annotated[str, typer.Option(help="What the reporter adds (stored encrypted)")],
    attachment: Annotated[
        list[str] | None,
        typer.Option(help="SHA256:SIZE:MEDIA_TYPE of further evidence (repeatable)"),
    ] = None,
    caller_ref: CallerRefOption = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The reporter adds information to their report through the receipt code."""
    request = intake_pb2.AddInformationRequest(
        receipt=intake_pb2.ReceiptCredentials(
            county_id=county,
            receipt_code=receipt_code,
            caller_ref=caller_ref or f"cli:{getpass.getuser()}",
        ),
        content=content,
        attachments=_attachments(attachment or []),
        idempotency_key=fresh_key(idempotency_key),
    )
    response = call("intake", Stub, "AddInformation", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"information {escape(response.information_id)} added")


def reports_feedback(
    report_id: ReportArg,
    note: Annotated[str, typer.Option(help="What the reporter is told of the result")],
    effective_at: EffectiveAtOption = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Record that the reporter was told the result of a concluded report (结果反馈)."""
    request = intake_pb2.RecordResultFeedbackRequest(
        report_id=report_id, channel_note=note, idempotency_key=fresh_key(idempotency_key)
    )
    moment = _moment(effective_at)
    if moment is not None:
        request.effective_at.FromDatetime(moment)
    response = call("intake", Stub, "RecordResultFeedback", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    limit = "within the limit" if response.within_limit else "[red]LATE[/red]"
    stdout_console().print(
        f"{escape(report_id)}: result told {when(response.result_given_at)} UTC, {limit}"
    )


RequestArg = Annotated[str, typer.Argument(help="The reveal request's id")]


@reveal_app.command("request")
def reveal_request(
    report_id: ReportArg,
    reason: Annotated[str, typer.Option(help="Why the identity is needed (kept in the audit log)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A case officer asks to see a real-name reporter's identity; a custodian decides."""
    request = intake_pb2.RequestIdentityRevealRequest(
        report_id=report_id, reason=reason, idempotency_key=fresh_key(idempotency_key)
    )
    response = call("intake", Stub, "RequestIdentityReveal", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    stdout_console().print(
        f"reveal request {escape(response.reveal_request_id)} filed; "
        "a custodian (not you) must approve it before `reports reveal-identity read`"
    )


@reveal_app.command("decide")
def reveal_decide(
    reveal_request_id: RequestArg,
    decision: Annotated[str, typer.Argument(help="approve or refuse")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A custodian (never the requester) approves or refuses a reveal request."""
    request = intake_pb2.DecideIdentityRevealRequest(
        reveal_request_id=reveal_request_id,
        decision=choice(intake_pb2.RevealDecision, "REVEAL_DECISION_", decision, "DECISION"),
        reason=reason,
        idempotency_key=fresh_key(idempotency_key),
    )
    response = call("intake", Stub, "DecideIdentityReveal", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    verb = "approved" if request.decision == intake_pb2.REVEAL_DECISION_APPROVE else "refused"
    stdout_console().print(f"reveal request {escape(response.reveal_request_id)} {verb}")


@reveal_app.command("read")
def reveal_read(
    reveal_request_id: RequestArg,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The requester reads the identity, once per approved request (audited by intake).

    Nothing is printed but what intake returns to this caller; nothing is stored or logged.
    """
    request = intake_pb2.RevealIdentityRequest(
        reveal_request_id=reveal_request_id, idempotency_key=fresh_key(idempotency_key)
    )
    response = call("intake", Stub, "RevealIdentity", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    out = stdout_console()
    reporter = response.reporter
    for label, value in (
        ("name", reporter.full_name),
        ("id number", reporter.id_number),
        ("phone", reporter.phone),
        ("address", reporter.address),
    ):
        out.print(f"{label:<10} {escape(value)}")
    console.print(
        "[yellow]This read is recorded in intake's audit log and cannot be repeated; "
        "do not copy the identity into a case file.[/yellow]"
    )
