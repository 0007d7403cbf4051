"""`xiezuo migrate`, `token` and `audit verify`."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from services.runtime import audit
from services.runtime.audit_checkpoints import CheckpointRead, read_checkpoints, record_checkpoints
from services.runtime.db import Database
from services.runtime.migrate import upgrade
from services.runtime.settings import SERVICES, STANDALONE_SERVICES, PlatformSettings, Settings
from services.runtime.tokens import mint_dev_token

console = Console(stderr=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the administration commands to the CLI."""
    app.command()(migrate)
    app.command()(token)
    app.add_typer(audit_app, name="audit")
    audit_app.command("verify")(audit_verify)
    audit_app.command("checkpoint")(audit_checkpoint)


def _service_or_fail(service: str) -> str:
    if service not in SERVICES + STANDALONE_SERVICES:
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
        try:
            upgrade(service, settings.database_url)
        except Exception as exc:  # an unreachable or unwritable database, said in one line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            console.print(f"[red]{service}: cannot migrate:[/red] {type(exc).__name__}: {reason}")
            raise typer.Exit(1) from exc
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
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Skip the Kafka checkpoints (cannot see a truncated tail; says so)",
        ),
    ] = False,
) -> None:
    """Check every audit chain against its key and the published checkpoints.

    Exits 1 if any entry was edited, inserted or deleted, or the log is shorter than a
    checkpoint says; 3 if the checkpoints cannot be read (use --offline to skip them).
    """
    settings = Settings(_service_or_fail(service))
    try:
        key = settings.audit_key(create=False)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]{service}: no usable audit key:[/red] {exc}")
        raise typer.Exit(2) from exc
    bootstrap = settings.platform.kafka_bootstrap
    read: CheckpointRead | None = None
    if not offline:
        try:
            read = asyncio.run(
                read_checkpoints(bootstrap, service, key, security=settings.kafka_security)
            )
        except Exception as exc:  # the broker being down is an operator's problem
            console.print(
                f"[red]cannot read audit checkpoints from Kafka at {bootstrap}:[/red] {exc}"
            )
            raise typer.Exit(3) from exc

    async def check() -> audit.AuditVerification:
        database = Database(settings.database_url, audit_key=key)
        try:
            async with database.session() as session:
                return await audit.verify(session, key, anchors=read.anchors if read else ())
        finally:
            await database.dispose()

    result = asyncio.run(check())
    problems = [{"chain": p.chain, "seq": p.seq, "problem": p.problem} for p in result.problems]
    unsigned = read.unsigned if read is not None else 0
    if unsigned and not as_json:
        # Not a break of the chain (nothing a forged checkpoint says is trusted), but someone
        # put it there: an injected outbox row, or a checkpoint signed by another key.
        console.print(
            f"[yellow]{service}: {unsigned} checkpoint(s) on the topic are not signed with its"
            " audit key and were ignored[/yellow]"
        )
    if as_json:
        summary = {
            "ok": not problems,
            "entries_checked": result.entries_checked,
            "chains_checked": result.chains_checked,
            "checkpoints_checked": result.anchors_checked,
            "entries_after_last_checkpoint": result.unanchored_entries,
            "checkpoints_read": read is not None,
            "unsigned_checkpoints": unsigned,
            "problems": problems,
        }
        print(json.dumps(summary))
    elif not problems:
        anchored = (
            f"{result.anchors_checked} checkpoints, {result.unanchored_entries} entries newer"
            " than the last checkpoint"
            if read is not None
            else "[yellow]checkpoints NOT checked (--offline)[/yellow]"
        )
        console.print(
            f"[green]{service}: audit log intact[/green] ({result.entries_checked} entries in"
            f" {result.chains_checked} county chains, {anchored})"
        )
    else:
        for problem in problems:
            where = f"{problem['chain']}" + (f" entry {problem['seq']}" if problem["seq"] else "")
            console.print(
                f"[red]{service}: audit log broken at {where}[/red]: {problem['problem']}"
            )
    if problems:
        raise typer.Exit(1)


def audit_checkpoint(
    service: Annotated[str, typer.Argument(help="Whose chain heads to checkpoint")],
) -> None:
    """Checkpoint every county chain head now (the running service's relay publishes it)."""
    settings = Settings(_service_or_fail(service))

    async def write() -> int:
        database = Database(settings.database_url, audit_key=settings.audit_key())
        try:
            return len(await record_checkpoints(database, service))
        finally:
            await database.dispose()

    written = asyncio.run(write())
    console.print(f"{service}: {written} checkpoint(s) written to the outbox")
