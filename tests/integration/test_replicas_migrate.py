"""Replicas that start together migrate one PostgreSQL database together, and all succeed."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.runtime.localstack import PostgresCluster

pytestmark = pytest.mark.postgres

XIEZUO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "xiezuo"
REPLICAS = 4


async def _migrate(service: str, url: str, state_dir: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(state_dir)
    env[f"XIEZUO_{service.upper()}_DATABASE_URL"] = url
    process = await asyncio.create_subprocess_exec(
        str(XIEZUO),
        "migrate",
        service,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, err.decode(errors="replace")


@pytest.mark.parametrize("service", ["cases", "assessment"])
async def test_replicas_migrating_one_fresh_database_at_once_all_succeed(
    service: str, postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = await postgres.acreate_database(f"together_{service}_{uuid.uuid4().hex[:8]}")
    results = await asyncio.gather(*(_migrate(service, url, tmp_path) for _ in range(REPLICAS)))
    # Without a lock, the losers die on "relation already exists" or a duplicate
    # alembic_version row, and a Kubernetes replica would crash-loop on its first start.
    failures = [err for code, err in results if code != 0]
    assert not failures, failures[0]
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        versions = await connection.fetch("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()
    # One row per migration branch head (runtime's and the service's), each written once.
    assert len(versions) == len({row[0] for row in versions}) == 2
