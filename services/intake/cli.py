"""Operator commands of intake (`xiezuo intake ...`)."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from services.intake.settings import IntakeSettings
from services.intake.store.rotation import rewrap_all
from services.intake.store.vault import Vault, read_key_file
from services.runtime.db import Database
from services.runtime.settings import Settings

app = typer.Typer(help="Intake: reports and the reporter vault.", no_args_is_help=True)


@app.command("rotate-vault-key")
def rotate_vault_key(
    new_key_file: Annotated[Path, typer.Option(help="The new KEK (32 bytes or 64 hex chars).")],
    old_key_file: Annotated[
        Path | None, typer.Option(help="The KEK being replaced; default: the configured one.")
    ] = None,
) -> None:
    """Re-wrap every data key under the new KEK without re-encrypting any content.

    Afterwards point XIEZUO_VAULT_KEY_FILE at the new key (keep the old one in
    XIEZUO_INTAKE_VAULT_RETIRED_KEY_FILES until every replica has restarted).
    """
    settings = Settings("intake")
    own = IntakeSettings()
    old = old_key_file or settings.platform.vault_key_file
    if old is None:
        old = settings.platform.state_dir / "keys" / "intake-vault-kek.hex"
    retired = [read_key_file(old), *(read_key_file(p) for p in own.vault_retired_key_files)]
    vault = Vault(read_key_file(new_key_file), retired=retired)
    counts = asyncio.run(_rotate(settings.database_url, vault))
    typer.echo(json.dumps({"kek_id": vault.kek_id, "rewrapped": counts}))


async def _rotate(url: str, vault: Vault) -> dict[str, int]:
    database = Database(url, audit_key=Settings("intake").audit_key())
    try:
        return await rewrap_all(database, vault, actor=f"cli:{getpass.getuser()}")
    finally:
        await database.dispose()
