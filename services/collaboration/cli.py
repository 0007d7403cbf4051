"""`xiezuo collaboration ...`: the network file and the county signing keys."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer
from xiezuo.collaboration.v1 import collaboration_pb2, collaboration_pb2_grpc

from services.cli.client import JsonOption, TimeoutOption, TokenOption, call, emit
from services.collaboration.domain.network import Network, NetworkFileInvalid, parse_network
from services.collaboration.signing_keys import ensure_dev_key, public_pem
from services.collaboration.store.network import VersionNotNewer, import_network
from services.runtime.db import Database
from services.runtime.migrate import upgrade_async
from services.runtime.settings import PlatformSettings, Settings
from services.working_calendar import CalendarInvalid, parse_calendar

app = typer.Typer(help="Collaboration between counties.", no_args_is_help=True)
network_app = typer.Typer(help="The county network file.", no_args_is_help=True)
app.add_typer(network_app, name="network")


def _calendar_reader(base: Path):  # type: ignore[no-untyped-def]
    def read(entry: str) -> str:
        path = base / entry
        try:
            text = path.read_text(encoding="utf-8")
            parse_calendar(text)
        except OSError as exc:
            raise ValueError(f"cannot read {entry}: {exc.strerror}") from exc
        except CalendarInvalid as invalid:
            raise ValueError(f"{entry}: {'; '.join(invalid.errors)}") from invalid
        return text

    return read


@network_app.command("import")
def import_command(
    network_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The YAML file")
    ],
    database_url: Annotated[
        str | None, typer.Option(help="Defaults to the service's database.")
    ] = None,
) -> None:
    """Import a new version of the network, or nothing if any line is bad (exit 1)."""
    try:
        network, sha256 = parse_network(
            network_file.read_text(encoding="utf-8"),
            read_calendar=_calendar_reader(network_file.parent),
        )
    except NetworkFileInvalid as invalid:
        for error in invalid.errors:
            typer.echo(f"{network_file}:{error}", err=True)
        typer.echo(f"refused: {len(invalid.errors)} error(s), nothing was imported", err=True)
        raise typer.Exit(code=1) from invalid
    url = database_url or Settings("collaboration").database_url
    try:
        asyncio.run(_import(url, network_file, network, sha256))
    except VersionNotNewer as stale:
        typer.echo(f"{network_file}: refused: {stale}", err=True)
        raise typer.Exit(code=1) from stale
    typer.echo(
        f"imported network {network.network_id} version {network.version}: "
        f"{len(network.counties)} counties, {len(network.agreements)} agreements"
    )


async def _import(url: str, source: Path, network: Network, sha256: str) -> None:
    await upgrade_async("collaboration", url)
    database = Database(url, audit_key=Settings("collaboration").audit_key())
    try:
        async with database.transaction() as session:
            await import_network(
                session, network, sha256=sha256, actor=f"cli:{getpass.getuser()}:{source.name}"
            )
    finally:
        await database.dispose()


@app.command("keygen")
def keygen(
    county: Annotated[str, typer.Option(help="The county this deployment signs for")],
) -> None:
    """Create (once) a dev signing key for a county; print the public key for the network file."""
    key_dir = PlatformSettings().state_dir / "keys"
    typer.echo(public_pem(ensure_dev_key(key_dir, county)), nl=False)


@network_app.command("show")
def show_network(
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The network in force, as the collaboration service holds it."""
    response = call(
        "collaboration",
        collaboration_pb2_grpc.CollaborationServiceStub,
        "GetNetwork",
        collaboration_pb2.GetNetworkRequest(),
        token,
        timeout,
    )
    if as_json:
        emit(response, as_json=True)
        return
    typer.echo(f"network {response.network_id} version {response.version}")
    typer.echo(f"city commission: {response.city_commission_name} ({response.city_commission_id})")
    for county in response.counties:
        typer.echo(f"  county {county.county_id}: {county.name}")
    for agreement in response.agreements:
        kinds = ", ".join(collaboration_pb2.LetterKind.Name(k) for k in agreement.kinds)
        typer.echo(f"  agreement {' + '.join(agreement.county_ids)}: {kinds}")
