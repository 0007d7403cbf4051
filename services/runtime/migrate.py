"""Alembic migrations per service: shared runtime tables first, then the service's own."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine.url import make_url

RUNTIME_MIGRATIONS = Path(__file__).with_name("migrations")
SERVICES_DIR = Path(__file__).resolve().parent.parent
# PostgreSQL advisory lock every migration run of a database takes first (advisory locks are
# per database): replicas starting together migrate one after another, and the later ones
# find the schema current instead of failing on tables the first one just created.
MIGRATION_LOCK_KEY = 0x5849455A554F4D49  # "XIEZUOMI"


def alembic_config(service: str, database_url: str) -> Config:
    """An Alembic config for one service's database (no alembic.ini needed)."""
    config = Config()
    # One env.py for all services; each service contributes only its version files.
    config.set_main_option("script_location", str(RUNTIME_MIGRATIONS))
    versions = [
        RUNTIME_MIGRATIONS / "versions",
        SERVICES_DIR / service / "store" / "migrations",
    ]
    config.set_main_option("version_locations", " ".join(str(path) for path in versions))
    config.set_main_option("path_separator", "space")
    config.attributes["database_url"] = database_url
    return config


def upgrade(service: str, database_url: str, revision: str = "heads") -> None:
    """Bring a service's database to the newest schema (blocking)."""
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(service, database_url), revision)


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory of a SQLite file: on a fresh state dir it does not exist yet."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


async def upgrade_async(service: str, database_url: str) -> None:
    """Same as `upgrade`, off the event loop (Alembic runs its own loop in the thread)."""
    await asyncio.to_thread(upgrade, service, database_url)
