"""`xiezuo rectification open|progress|verify|show|list`: rectification items (整改) in cases."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

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
    stdout_console,
    when,
)

app = typer.Typer(
    help="Rectification items (整改) from supervision, campaigns and inspection tours.",
    no_args_is_help=True,
)
Stub = cases_pb2_grpc.CaseServiceStub
ItemArg = Annotated[str, typer.Argument(help="The rectification item's id")]
SOURCE_PREFIX = "RECTIFICATION_SOURCE_"


def _print_item(item: cases_pb2.RectificationItem, *, as_json: bool) -> None:
    if as_json:
        emit(item, as_json=True)
        return
    out = stdout_console()
    escalated = " [red](escalated)[/red]" if item.escalated else ""
    out.print(f"[bold]{escape(item.item_id)}[/bold]  {escape(item.status)}{escalated}")
    facts = {
        "county / zone": f"{item.county_id} / {item.zone_id}",
        "township": item.township_id,
        "source": enum_label(cases_pb2.RectificationSource.Name(item.source), SOURCE_PREFIX)
        + (f" {item.source_ref}" if item.source_ref else ""),
        "owner unit": item.owner_unit,
        "finding": item.finding,
        "opened": when(item.opened_at),
        "due": when(item.due_at),
        "closed": when(item.closed_at),
        "rules": item.rule_version,
    }
    for label, value in facts.items():
        out.print(f"  {label:<14} {escape(value)}")
    print_table(
        "progress",
        ("at", "by", "kind", "done", "note"),
        ((when(p.at), p.actor, p.kind, f"{p.percent_done} %", p.note) for p in item.progress),
    )


@app.command("open")
def rectification_open(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Zone following it up")],
    township: Annotated[str, typer.Option(help="Township of the owner unit")],
    source: Annotated[
        str,
        typer.Option(
            help="Where it came from: "
            + ", ".join(choices(cases_pb2.RectificationSource, SOURCE_PREFIX))
        ),
    ],
    source_ref: Annotated[str, typer.Option(help="The finding, campaign or tour reference")],
    owner_unit: Annotated[str, typer.Option(help="The unit that must rectify")],
    finding: Annotated[str, typer.Option(help="What must be rectified")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Open a rectification item; its due date comes from the county's rules."""
    request = cases_pb2.OpenRectificationRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        zone_id=zone,
        township_id=township,
        source=choice(cases_pb2.RectificationSource, SOURCE_PREFIX, source, "--source"),
        source_ref=source_ref,
        owner_unit=owner_unit,
        finding=finding,
    )
    response = call("cases", Stub, "OpenRectification", request, token, timeout)
    _print_item(response.item, as_json=as_json)


@app.command("progress")
def rectification_progress(
    item_id: ItemArg,
    note: Annotated[str, typer.Option(help="What has been done")],
    percent_done: Annotated[int, typer.Option("--percent", help="Percentage done (0..100)")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Record the owner unit's progress report on an item."""
    request = cases_pb2.ReportRectificationProgressRequest(
        idempotency_key=fresh_key(idempotency_key),
        item_id=item_id,
        note=note,
        percent_done=percent_done,
    )
    response = call("cases", Stub, "ReportRectificationProgress", request, token, timeout)
    _print_item(response.item, as_json=as_json)


@app.command("verify")
def rectification_verify(
    item_id: ItemArg,
    note: Annotated[str, typer.Option(help="What the verification found")],
    done: Annotated[
        bool, typer.Option("--done/--not-done", help="Verified done (closes the item) or not yet")
    ] = True,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Verify an item as done (it closes) or not yet done (it stays open)."""
    request = cases_pb2.VerifyRectificationRequest(
        idempotency_key=fresh_key(idempotency_key), item_id=item_id, done=done, note=note
    )
    response = call("cases", Stub, "VerifyRectification", request, token, timeout)
    _print_item(response.item, as_json=as_json)


@app.command("show")
def rectification_show(
    item_id: ItemArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One item with its progress reports."""
    request = cases_pb2.GetRectificationRequest(item_id=item_id)
    response = call("cases", Stub, "GetRectification", request, token, timeout)
    _print_item(response.item, as_json=as_json)


@app.command("list")
def rectification_list(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Only this zone")] = "",
    open_only: Annotated[bool, typer.Option(help="Only open items")] = False,
    page_size: Annotated[int, typer.Option(help="Items per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A page of the county's items in id order."""
    request = cases_pb2.ListRectificationsRequest(
        county_id=county,
        zone_id=zone,
        open_only=open_only,
        page_size=page_size,
        page_token=page_token,
    )
    response = call("cases", Stub, "ListRectifications", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"rectification items of {county}" + (f" / {zone}" if zone else ""),
        ("item", "zone", "township", "owner unit", "status", "due", "escalated"),
        (
            (
                i.item_id,
                i.zone_id,
                i.township_id,
                i.owner_unit,
                i.status,
                when(i.due_at),
                "YES" if i.escalated else "no",
            )
            for i in response.items
        ),
    )
    next_page(response.next_page_token)
