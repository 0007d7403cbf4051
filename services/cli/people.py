"""`xiezuo people show|list|create|update` and `xiezuo conflicts declare` (staffing)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from xiezuo.staffing.v1 import registry_pb2, registry_pb2_grpc, staffing_pb2, staffing_pb2_grpc

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
    next_page,
    print_table,
    stdout_console,
)

app = typer.Typer(help="People on the staffing register.", no_args_is_help=True)
conflicts_app = typer.Typer(
    help="Declared conflicts of interest (利害关系) that keep a person off a matter.",
    no_args_is_help=True,
)
PersonArg = Annotated[str, typer.Argument(help="The person's id")]
RELATION_PREFIX = "CONFLICT_RELATION_"
STATUS_HELP = "STATUS:FIRST_DAY[:LAST_DAY], e.g. on_leave:2026-03-01:2026-03-10 (repeatable)"


def _statuses(values: list[str]) -> list[staffing_pb2.StatusPeriod]:
    periods = []
    for value in values:
        status, _, days = value.partition(":")
        start, _, end = days.partition(":")
        if not status or not start:
            fail(f"--status {value!r}: expected {STATUS_HELP.split(',')[0]}", EXIT_INVALID)
        periods.append(staffing_pb2.StatusPeriod(status=status, start_date=start, end_date=end))
    return periods


def _print_person(person: staffing_pb2.Person, changed: list[str] | None = None) -> None:
    out = stdout_console()
    out.print(f"[bold]{escape(person.person_id)}[/bold]  {escape(person.name)}")
    facts = {
        "county / zone": f"{person.county_id} / {person.zone_id or '-'}",
        "home township": person.home_township_id or "-",
        "village": person.village_id or "-",
        "roles": ", ".join(person.roles) or "-",
        "skills": ", ".join(person.skills) or "-",
        "workload cap": str(person.workload_cap),
    }
    if changed is not None:
        facts["changed"] = ", ".join(changed) or "nothing"
    for label, value in facts.items():
        out.print(f"  {label:<14} {escape(value)}")
    if person.statuses:
        print_table(
            "status periods",
            ("status", "from", "until"),
            ((s.status, s.start_date, s.end_date or "-") for s in person.statuses),
        )


@app.command("show")
def people_show(
    person_id: PersonArg,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One person: zone, roles, skills, workload cap and status periods."""
    request = staffing_pb2.GetPersonRequest(person_id=person_id)
    response = call(
        "staffing", staffing_pb2_grpc.StaffingServiceStub, "GetPerson", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
    else:
        _print_person(response.person)


@app.command("list")
def people_list(
    county: Annotated[str, typer.Option(help="County id")],
    zone: Annotated[str, typer.Option(help="Only this zone")] = "",
    page_size: Annotated[int, typer.Option(help="People per page")] = 50,
    page_token: Annotated[str, typer.Option(help="Continue from a previous page")] = "",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """A page of the register (every zone the caller may see unless --zone)."""
    request = staffing_pb2.ListPeopleRequest(
        county_id=county, zone_id=zone, page_size=page_size, page_token=page_token
    )
    response = call(
        "staffing", staffing_pb2_grpc.StaffingServiceStub, "ListPeople", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
        return
    print_table(
        f"people of {county}" + (f" / {zone}" if zone else ""),
        ("person", "name", "zone", "township", "roles", "cap"),
        (
            (
                p.person_id,
                p.name,
                p.zone_id or "-",
                p.home_township_id or "-",
                ", ".join(p.roles),
                str(p.workload_cap),
            )
            for p in response.people
        ),
    )
    next_page(response.next_page_token)


@app.command("create")
def people_create(
    person_id: PersonArg,
    county: Annotated[str, typer.Option(help="County id")],
    name: Annotated[str, typer.Option(help="Name")],
    role: Annotated[list[str], typer.Option(help="Role, e.g. township_member (repeatable)")],
    township: Annotated[
        str, typer.Option(help="Home township (the zone follows); empty for county staff")
    ] = "",
    village: Annotated[str, typer.Option(help="Village (informants)")] = "",
    skill: Annotated[list[str] | None, typer.Option(help="Skill, e.g. law (repeatable)")] = None,
    workload_cap: Annotated[int, typer.Option(help="Maximum open assignments (0..50)")] = 3,
    status: Annotated[list[str] | None, typer.Option(help=STATUS_HELP)] = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Register a new person (a registry change, audited)."""
    request = registry_pb2.CreatePersonRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        person_id=person_id,
        name=name,
        roles=role,
        home_township_id=township,
        village_id=village,
        skills=skill or [],
        workload_cap=workload_cap,
        statuses=_statuses(status or []),
    )
    response = call(
        "staffing", registry_pb2_grpc.RegistryServiceStub, "CreatePerson", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
    else:
        _print_person(response.person)


@app.command("update")
def people_update(
    person_id: PersonArg,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    role: Annotated[
        list[str] | None, typer.Option(help="Role (repeatable; replaces all roles)")
    ] = None,
    township: Annotated[
        str | None, typer.Option(help="Home township ('' for county staff)")
    ] = None,
    village: Annotated[str | None, typer.Option(help="Village ('' for none)")] = None,
    skill: Annotated[
        list[str] | None, typer.Option(help="Skill (repeatable; replaces all skills)")
    ] = None,
    workload_cap: Annotated[int | None, typer.Option(help="Maximum open assignments")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help=STATUS_HELP + "; replaces all periods")
    ] = None,
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Change a person: options not given keep the person's current value."""
    current = call(
        "staffing",
        staffing_pb2_grpc.StaffingServiceStub,
        "GetPerson",
        staffing_pb2.GetPersonRequest(person_id=person_id),
        token,
        timeout,
    ).person
    request = registry_pb2.UpdatePersonRequest(
        idempotency_key=fresh_key(idempotency_key),
        person_id=person_id,
        name=current.name if name is None else name,
        roles=list(current.roles) if role is None else role,
        home_township_id=current.home_township_id if township is None else township,
        village_id=current.village_id if village is None else village,
        skills=list(current.skills) if skill is None else skill,
        workload_cap=current.workload_cap if workload_cap is None else workload_cap,
        statuses=list(current.statuses) if status is None else _statuses(status),
    )
    response = call(
        "staffing", registry_pb2_grpc.RegistryServiceStub, "UpdatePerson", request, token, timeout
    )
    if as_json:
        emit(response, as_json=True)
    else:
        _print_person(response.person, list(response.changed_fields))


@conflicts_app.command("declare")
def conflicts_declare(
    person_id: PersonArg,
    county: Annotated[str, typer.Option(help="County id")],
    party_key: Annotated[
        str, typer.Option(help="Stable key of the subject or reporter (never a name)")
    ],
    relation: Annotated[
        str,
        typer.Option(
            help="The relationship: "
            + ", ".join(choices(staffing_pb2.ConflictRelation, RELATION_PREFIX))
        ),
    ],
    valid_from: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")],
    valid_until: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD (default: open)")] = "",
    idempotency_key: IdempotencyOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Declare that a person has a conflict with a party; draws leave them out."""
    request = staffing_pb2.DeclareConflictRequest(
        idempotency_key=fresh_key(idempotency_key),
        county_id=county,
        person_id=person_id,
        party_key=party_key,
        relation=choice(staffing_pb2.ConflictRelation, RELATION_PREFIX, relation, "--relation"),
        valid_from=valid_from,
        valid_until=valid_until,
    )
    response = call(
        "staffing",
        staffing_pb2_grpc.StaffingServiceStub,
        "DeclareConflict",
        request,
        token,
        timeout,
    )
    if as_json:
        emit(response, as_json=True)
    else:
        stdout_console().print(f"conflict {escape(response.conflict_id)} recorded")
