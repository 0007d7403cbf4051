"""`xiezuo zones show|list|update`, `xiezuo townships list|place`, `xiezuo registry changes`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.staffing.v1 import registry_pb2, registry_pb2_grpc

from services.cli.client import (
    IdempotencyOption,
    JsonOption,
    TimeoutOption,
    TokenOption,
    call,
    emit,
    fresh_key,
    next_page,
    print_table,
    stdout_console,
    when,
)

zones_app = typer.Typer(help="Collaboration zones (协作区) on the register.", no_args_is_help=True)
townships_app = typer.Typer(
    help="Townships (乡镇) and the zone each is placed in.", no_args_is_help=True
)
registry_app = typer.Typer(help="The register's change history.", no_args_is_help=True)
Stub = registry_pb2_grpc.RegistryServiceStub
ZoneArg = Annotated[str, typer.Argument(help="The zone's id")]
PageSizeOption = Annotated[int, typer.Option(help="Rows per page")]
PageTokenOption = Annotated[str, typer.Option(help="Continue from a previous page")]


def register(app: typer.Typer) -> None:
    """Add the register's command groups to the CLI."""
    app.add_typer(zones_app, name="zones")
    app.add_typer(townships_app, name="townships")
    app.add_typer(registry_app, name="registry")


def _print_zone(zone: registry_pb2.Zone, changed: list[str] | None = None) -> None:
    out = stdout_console()
    out.print(f"[bold]{escape(zone.zone_id)}[/bold]  {escape(zone.name)}")
    facts = {
        "county": zone.county_id,
        "chief": zone.chief_id or "-",
        "deputy": zone.deputy_id or "-",
        "townships": ", ".join(zone.township_ids) or "-",
    }
    if changed is not None:
        facts["changed"] = ", ".join(changed) or "nothing"
    for label, value in facts.items():
        out.print(f"  {label:<10} {escape(value)}")


@zones_app.command("show")
def zones_show(
    zone_id: ZoneArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One zone: name, chief, deputy and townships."""
    response = call(
        "staffing", Stub, "GetZone", registry_pb2.GetZoneRequest(zone_id=zone_id), token, timeout
    )
    if as_json:
        emit(response, as_json=True)
    else:
        _print_zone(response.zone)


@zones_app.command("list")
def zones_list(
    county: Annotated[str, typer.Option(help="County id")],
    page_size: PageSizeOption = 50,
    page_token: PageTokenOption = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The county's zones in id order."""
    request = registry_pb2.ListZonesRequest(
        county_id=county, page_size=page_size, page_token=page_token
    )
    response = call("staffing", Stub, "ListZones", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"zones of {county}",
        ("zone", "name", "chief", "deputy", "townships"),
        (
            (z.zone_id, z.name, z.chief_id or "-", z.deputy_id or "-", ", ".join(z.township_ids))
            for z in response.zones
        ),
    )
    next_page(response.next_page_token)


@zones_app.command("update")
def zones_update(
    zone_id: ZoneArg,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    chief: Annotated[
        str | None, typer.Option(help="Zone chief's person id ('' for none; needs zone_chief)")
    ] = None,
    deputy: Annotated[
        str | None, typer.Option(help="Deputy chief's person id ('' for none)")
    ] = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Rename a zone or appoint its chief and deputy; options not given stay as they are."""
    current = call(
        "staffing", Stub, "GetZone", registry_pb2.GetZoneRequest(zone_id=zone_id), token, timeout
    ).zone
    request = registry_pb2.UpdateZoneRequest(
        idempotency_key=fresh_key(idempotency_key),
        zone_id=zone_id,
        name=current.name if name is None else name,
        chief_id=current.chief_id if chief is None else chief,
        deputy_id=current.deputy_id if deputy is None else deputy,
    )
    response = call("staffing", Stub, "UpdateZone", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
    else:
        _print_zone(response.zone, list(response.changed_fields))


@townships_app.command("list")
def townships_list(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Only this zone's townships")] = "",
    page_size: PageSizeOption = 50,
    page_token: PageTokenOption = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The county's townships and their zones, in id order."""
    request = registry_pb2.ListTownshipsRequest(
        county_id=county, zone_id=zone, page_size=page_size, page_token=page_token
    )
    response = call("staffing", Stub, "ListTownships", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"townships of {county}" + (f" / {zone}" if zone else ""),
        ("township", "name", "zone", "placed from"),
        ((t.township_id, t.name, t.zone_id, t.effective_from) for t in response.townships),
    )
    next_page(response.next_page_token)


@townships_app.command("place")
def townships_place(
    township_id: Annotated[str, typer.Argument(help="The township (created when new)")],
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="The zone it is placed in")],
    name: Annotated[str, typer.Option(help="The township's name")],
    effective_from: Annotated[str, typer.Option(help="Placed from this day, YYYY-MM-DD")],
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Place a township in a zone from a day (creating it when new)."""
    request = registry_pb2.PlaceTownshipRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        township_id=township_id,
        zone_id=zone,
        name=name,
        effective_from=effective_from,
    )
    response = call("staffing", Stub, "PlaceTownship", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    placed = response.township
    stdout_console().print(
        f"{escape(placed.township_id)} ({escape(placed.name)}) in {escape(placed.zone_id)} "
        f"from {escape(placed.effective_from)}; changed: "
        f"{escape(', '.join(response.changed_fields) or 'nothing')}"
    )


@registry_app.command("changes")
def registry_changes(
    record_type: Annotated[str, typer.Argument(help="person, zone or township")],
    record_id: Annotated[str, typer.Argument(help="The record's id")],
    page_size: PageSizeOption = 50,
    page_token: PageTokenOption = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Every change of one register record, oldest first, with who made it."""
    request = registry_pb2.ListRegistryChangesRequest(
        record_type=record_type, record_id=record_id, page_size=page_size, page_token=page_token
    )
    response = call("staffing", Stub, "ListRegistryChanges", request, token, timeout)
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"changes of {record_type} {record_id}",
        ("#", "at", "by", "action", "fields", "after"),
        (
            (
                str(c.change_id),
                when(c.changed_at),
                c.changed_by,
                c.action,
                ", ".join(c.fields),
                c.after_json,
            )
            for c in response.changes
        ),
    )
    next_page(response.next_page_token)
