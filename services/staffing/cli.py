"""`xiezuo staffing ...`: operator commands of the staffing service."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path

import typer

from services.runtime.db import Database
from services.runtime.migrate import upgrade_async
from services.runtime.settings import Settings
from services.staffing.domain.county_file import CountyFileInvalid, CountyRegistry, parse_county
from services.staffing.store.registry import import_county

app = typer.Typer(help="Staffing: the county registry and team draws.", no_args_is_help=True)


@app.command("import")
def import_command(
    county_file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),  # noqa: B008
    database_url: str | None = typer.Option(None, help="Defaults to the service's database."),
) -> None:
    """Load a whole county from YAML in one transaction, or nothing if any row is bad."""
    try:
        county = parse_county(county_file.read_text(encoding="utf-8"))
    except CountyFileInvalid as invalid:
        for error in invalid.errors:
            typer.echo(f"{county_file}:{error}", err=True)
        typer.echo(f"refused: {len(invalid.errors)} error(s), nothing was loaded", err=True)
        raise typer.Exit(code=1) from invalid
    url = database_url or Settings("staffing").database_url
    written = asyncio.run(_load(url, county_file, county))
    typer.echo(
        f"loaded county {county.county_id}: {len(county.zones)} zones, "
        f"{len(county.townships)} townships, {len(county.people)} people ({written} rows)"
    )


async def _load(url: str, source: Path, county: CountyRegistry) -> int:
    await upgrade_async("staffing", url)
    database = Database(url, audit_key=Settings("staffing").audit_key())
    try:
        async with database.transaction() as session:
            return await import_county(
                session, county, actor=f"cli:{getpass.getuser()}:{source.name}"
            )
    finally:
        await database.dispose()
