"""Working clues and cases: `clues dispose`, `cases show|advance|list|link|joint townships`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cli.client import (
    EXIT_INVALID,
    IdempotencyOption,
    JsonOption,
    ServiceCall,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    fail,
    fresh_key,
    next_page,
    print_table,
    resolve_token,
    stdout_console,
    when,
)

CaseArg = Annotated[str, typer.Argument(help="The clue/case id (a case keeps its clue's id)")]
ReasonOption = Annotated[str, typer.Option(help="Why (needed for rejections, send-backs, ...)")]


def act(
    request: cases_pb2.ActOnCaseRequest, token: str | None, timeout: float
) -> cases_pb2.ActOnCaseResponse:
    """Send one workflow step to cases."""
    call = ServiceCall("cases", resolve_token(token), timeout)
    return call.run(
        lambda channel, metadata: cases_pb2_grpc.CaseServiceStub(channel).ActOnCase(
            request, metadata=metadata, timeout=timeout
        )
    )


def print_step(
    response: cases_pb2.ActOnCaseResponse
    | cases_pb2.LinkRelatedCluesResponse
    | cases_pb2.DeclareJointCaseResponse,
    *,
    as_json: bool,
) -> None:
    """What a step did, for a person or a script."""
    if as_json:
        emit(response, as_json=True)
        return
    step, case = response.step, response.case
    retried = " (a retry: nothing acted twice)" if response.replayed else ""
    out = stdout_console()
    out.print(
        f"{escape(case.case_id)}: {escape(step.action)} {escape(step.from_stage)} → "
        f"[bold]{escape(step.to_stage)}[/bold]{retried}"
    )
    if step.event:
        out.print(f"  event: {escape(step.event)}")
    if case.pending.kind:
        out.print(
            f"  awaiting: {escape(case.pending.kind)} {escape(case.pending.choice)} "
            f"(next approver: {escape(case.pending.next_approver)})"
        )
    if case.team_requested:
        out.print(f"  team requested from staffing: {escape(case.team_requested)}")


def clues_dispose(
    clue_id: CaseArg,
    way: Annotated[
        str,
        typer.Argument(help="inquiry, preliminary_verification, store_pending or close"),
    ],
    reason: ReasonOption = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Propose a way of disposal (处置方式) for a clue; it then awaits its approval."""
    request = cases_pb2.ActOnCaseRequest(
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        case_id=clue_id,
        action="propose_disposal",
        choice=way,
        reason=reason,
    )
    print_step(act(request, token, timeout), as_json=as_json)


def _sanctions(values: list[str]) -> list[cases_pb2.Sanction]:
    sanctions = []
    for value in values:
        track, _, kind = value.partition(":")
        if not track or not kind:
            fail(f"--sanction {value!r}: expected TRACK:KIND, e.g. party:warning", EXIT_INVALID)
        sanctions.append(cases_pb2.Sanction(track=track, kind=kind))
    return sanctions


def _meeting(
    value: str, members: list[str], present: list[str], votes: tuple[int, int]
) -> cases_pb2.CaseMeeting | None:
    if not value:
        return None
    body, _, minutes = value.partition(":")
    if not body or not minutes:
        fail(
            f"--meeting {value!r}: expected BODY:MINUTES, e.g. standing_committee:纪要7",
            EXIT_INVALID,
        )
    return cases_pb2.CaseMeeting(
        body=body,
        minutes_ref=minutes,
        members=members,
        present=present or members,
        votes_for=votes[0],
        votes_against=votes[1],
    )


def cases_advance(
    case_id: CaseArg,
    action: Annotated[
        str, typer.Argument(help="Rule-set action, e.g. approve_disposal, sign_report, send_back")
    ],
    choice: Annotated[str, typer.Option(help="The way, outcome or decision chosen")] = "",
    reason: ReasonOption = "",
    days: Annotated[int, typer.Option(help="Days asked for (request_extension)")] = 0,
    description: Annotated[str, typer.Option(help="Evidence description")] = "",
    sha256: Annotated[str, typer.Option(help="Hex SHA-256 of an evidence item")] = "",
    sanction: Annotated[
        list[str] | None, typer.Option(help="TRACK:KIND named by a hearing report (repeatable)")
    ] = None,
    decision: Annotated[
        str, typer.Option(help="The decision a changed review puts in place (decide_appeal)")
    ] = "",
    measure: Annotated[
        list[str] | None,
        typer.Option(help="Organisational measure (组织处理) of a decision (repeatable)"),
    ] = None,
    meeting: Annotated[
        str,
        typer.Option(help="BODY:MINUTES of the meeting that decided (collective approvals)"),
    ] = "",
    member: Annotated[
        list[str] | None, typer.Option(help="A member of the deciding body (repeatable)")
    ] = None,
    present: Annotated[
        list[str] | None,
        typer.Option(help="A member present (repeatable; default: every --member)"),
    ] = None,
    votes_for: Annotated[int, typer.Option(help="Votes for the motion")] = 0,
    votes_against: Annotated[int, typer.Option(help="Votes against the motion")] = 0,
    effective_at: Annotated[
        datetime | None,
        typer.Option(
            help="Back-entry (补录): when the step was done on paper, UTC "
            "(e.g. 2026-03-05T09:30:00); needs a token with the back_entry role"
        ),
    ] = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Take one workflow step on a case file (safe to retry with --idempotency-key)."""
    request = cases_pb2.ActOnCaseRequest(
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        case_id=case_id,
        action=action,
        choice=choice,
        reason=reason,
        days=days,
        description=description,
        sha256=sha256,
        sanctions=_sanctions(sanction or []),
        decision=decision,
        organisational_measures=measure or [],
    )
    recorded = _meeting(meeting, member or [], present or [], (votes_for, votes_against))
    if recorded is not None:
        request.meeting.CopyFrom(recorded)
    if effective_at is not None:
        moment = effective_at if effective_at.tzinfo else effective_at.replace(tzinfo=UTC)
        request.effective_at.FromDatetime(moment)
    print_step(act(request, token, timeout), as_json=as_json)


def cases_show(
    case_id: CaseArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One case file: where it stands, its teams, deadlines and full history."""
    call = ServiceCall("cases", resolve_token(token), timeout)
    response = call.run(
        lambda channel, metadata: cases_pb2_grpc.CaseServiceStub(channel).GetCase(
            cases_pb2.GetCaseRequest(case_id=case_id), metadata=metadata, timeout=timeout
        )
    )
    if as_json:
        emit(response, as_json=True)
        return
    case = response.case
    out = stdout_console()
    out.print(f"[bold]{escape(case.case_id)}[/bold]  stage: [bold]{escape(case.stage)}[/bold]")
    facts = {
        "county / zone": f"{case.county_id} / {case.zone_id}",
        "townships": ", ".join(case.township_ids) or case.township_id,
        "categories": ", ".join(case.categories),
        "filed": "yes" if case.filed else "no",
        "overdue": "YES" if case.overdue else "no",
        "working team": ", ".join(case.working_team) or "-",
        "hearing team": ", ".join(case.hearing_team) or "-",
        "team requested": case.team_requested or "-",
        "awaiting": (
            f"{case.pending.kind} {case.pending.choice} → {case.pending.next_approver}"
            if case.pending.kind
            else "-"
        ),
        "rules": case.rule_version,
    }
    for label, value in facts.items():
        out.print(f"  {label:<15} {escape(value)}")
    print_table(
        "deadlines",
        ("kind", "due", "status", "ended"),
        ((d.kind, when(d.due_at), d.status, when(d.ended_at)) for d in response.deadlines),
    )
    print_table(
        "history",
        ("#", "at", "actor", "action", "from → to", "event", "reason", "detail"),
        (
            (
                str(s.step_id),
                when(s.at),
                s.actor,
                s.action,
                f"{s.from_stage} → {s.to_stage}",
                s.event,
                s.reason,
                "" if s.detail_json in ("", "{}") else s.detail_json,
            )
            for s in response.history
        ),
    )


def cases_list(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Only this zone")] = "",
    township: Annotated[str, typer.Option(help="Only this township (of the subject)")] = "",
    stage: Annotated[str, typer.Option(help="Only this stage, e.g. investigation")] = "",
    category: Annotated[str, typer.Option(help="Only this allegation category")] = "",
    assignee: Annotated[str, typer.Option(help="Only files with this person on a team")] = "",
    overdue_only: Annotated[bool, typer.Option(help="Only files past a deadline")] = False,
    at_risk_only: Annotated[
        bool, typer.Option(help="Only files in a deadline's warning period or past it")
    ] = False,
    awaiting_me: Annotated[
        bool, typer.Option(help="Only files on which an approval awaits the caller (an inbox)")
    ] = False,
    page_size: Annotated[int, typer.Option(help="Files per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The case files the caller may see, filtered, in case-id order."""
    request = cases_pb2.ListCasesRequest(
        county_id=county,
        zone_id=zone,
        township_id=township,
        stage=stage,
        category=category,
        assignee=assignee,
        overdue_only=overdue_only,
        at_risk_only=at_risk_only,
        awaiting_caller_approval=awaiting_me,
        page_size=page_size,
        page_token=page_token,
    )
    response = call("cases", cases_pb2_grpc.CaseServiceStub, "ListCases", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"cases of {county}" + (f" / {zone}" if zone else ""),
        ("case", "zone", "townships", "stage", "filed", "overdue", "team", "updated"),
        (
            (
                c.case_id,
                c.zone_id,
                ", ".join(c.township_ids) or c.township_id,
                c.stage,
                "yes" if c.filed else "no",
                "YES" if c.overdue else "no",
                ", ".join(c.working_team) or "-",
                when(c.updated_at),
            )
            for c in response.cases
        ),
    )
    next_page(response.next_page_token)


def cases_counts(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Only this zone")] = "",
    township: Annotated[str, typer.Option(help="Only this township (of the subject)")] = "",
    category: Annotated[str, typer.Option(help="Only this allegation category")] = "",
    assignee: Annotated[str, typer.Option(help="Only files with this person on a team")] = "",
    overdue_only: Annotated[bool, typer.Option(help="Only files past a deadline")] = False,
    at_risk_only: Annotated[
        bool, typer.Option(help="Only files in a deadline's warning period or past it")
    ] = False,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """How many of the files the caller may see stand in each stage, filed or not."""
    request = cases_pb2.CountCasesByStageRequest(
        county_id=county,
        zone_id=zone,
        township_id=township,
        category=category,
        assignee=assignee,
        overdue_only=overdue_only,
        at_risk_only=at_risk_only,
    )
    response = call(
        "cases", cases_pb2_grpc.CaseServiceStub, "CountCasesByStage", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"files by stage, {county}" + (f" / {zone}" if zone else "") + f": {response.total}",
        ("stage", "filed", "files"),
        ((c.stage, "yes" if c.filed else "no", str(c.count)) for c in response.counts),
    )


def cases_link(
    case_id: CaseArg,
    related_case_id: Annotated[str, typer.Argument(help="The other clue/case")],
    reason: Annotated[str, typer.Option(help="Why they are related (required)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Link two clues as related, worked side by side (safe to retry)."""
    request = cases_pb2.LinkRelatedCluesRequest(
        idempotency_key=fresh_key(idempotency_key),
        case_id=case_id,
        related_case_id=related_case_id,
        reason=reason,
    )
    response = call(
        "cases", cases_pb2_grpc.CaseServiceStub, "LinkRelatedClues", request, token, timeout
    )
    print_step(response, as_json=as_json)


def cases_joint(
    case_id: CaseArg,
    township: Annotated[
        list[str], typer.Option(help="A township added besides the subject's own (repeatable)")
    ],
    reason: Annotated[str, typer.Option(help="Why the case is worked jointly (required)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Make a case joint across further townships: its teams come from none of them."""
    request = cases_pb2.DeclareJointCaseRequest(
        idempotency_key=fresh_key(idempotency_key),
        case_id=case_id,
        township_ids=township,
        reason=reason,
    )
    response = call(
        "cases", cases_pb2_grpc.CaseServiceStub, "DeclareJointCase", request, token, timeout
    )
    print_step(response, as_json=as_json)
