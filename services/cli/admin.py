"""`xiezuo migrate`, `token` and `audit verify`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from services.runtime import audit
from services.runtime.db import Database
from services.runtime.migrate import upgrade
from services.runtime.settings import SERVICES, PlatformSettings, Settings
from services.runtime.tokens import mint_dev_token

console = Console(stderr=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the administration commands to the CLI."""
    app.command()(migrate)
    app.command()(token)
    app.add_typer(audit_app, name="audit")
    audit_app.command("verify")(audit_verify)


def _service_or_fail(service: str) -> str:
    if service not in SERVICES:
        console.print(
            f"[red]unknown service {service!r}[/red]; expected one of {', '.join(SERVICES)}"
        )
        raise typer.Exit(2)
    return service


def migrate(
    services: Annotated[
        list[str] | None, typer.Argument(help="Services to migrate (default: all)")
    ] = None,
) -> None:
    """Bring each service's database to the newest schema."""
    for service in services or list(SERVICES):
        settings = Settings(_service_or_fail(service))
        upgrade(service, settings.database_url)
        console.print(f"{service}: migrated")


def token(
    subject: Annotated[str, typer.Option(help="Who the token speaks for")],
    county: Annotated[str, typer.Option(help="County the token is scoped to")],
    role: Annotated[list[str], typer.Option(help="Role, repeatable (e.g. intake_officer)")],
    zone: Annotated[list[str] | None, typer.Option(help="Zone, repeatable; '*' for all")] = None,
    township: Annotated[list[str] | None, typer.Option(help="Township, repeatable")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds")] = 3600,
) -> None:
    """Mint a development token signed by the local dev key (never for production)."""
    platform = PlatformSettings()
    print(
        mint_dev_token(
            key_dir=platform.state_dir / "keys",
            subject=subject,
            roles=role,
            county_id=county,
            zone_ids=zone or (),
            township_ids=township or (),
            ttl_seconds=ttl,
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )
    )


def audit_verify(
    service: Annotated[str, typer.Argument(help="Whose audit log to verify")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute the audit chain; exits 1 if any entry was edited or deleted."""
    settings = Settings(_service_or_fail(service))

    async def check() -> audit.AuditVerification:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                return await audit.verify(session)
        finally:
            await database.dispose()

    result = asyncio.run(check())
    if as_json:
        print(json.dumps(result.__dict__))
    elif result.ok:
        console.print(
            f"[green]{service}: audit chain intact[/green] ({result.entries_checked} entries)"
        )
    else:
        where = f"entry {result.first_bad_id}"
        console.print(f"[red]{service}: audit chain broken at {where}[/red]: {result.problem}")
    if not result.ok:
        raise typer.Exit(1)
