"""Shared fixtures: one real Kafka node and one private PostgreSQL cluster per test run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.localstack import KafkaNode, PostgresCluster
from services.runtime.migrate import upgrade_async

MakeDatabase = Callable[[str], Awaitable[Database]]


@pytest.fixture(scope="session")
async def kafka() -> AsyncIterator[KafkaNode]:
    """A real single-node KRaft broker on 127.0.0.1, shared by the whole run."""
    node = KafkaNode(partitions=3)
    await node.astart()
    try:
        yield node
    finally:
        await node.astop()


@pytest.fixture(scope="module")
async def own_kafka(request: pytest.FixtureRequest) -> AsyncIterator[KafkaNode]:
    """A broker for one test module alone, for tests that run services under their real
    consumer group names (`xiezuo-<service>`): on the session broker those groups may have other
    members (the e2e stack's), which would take partitions from the services under test.

    Partitions: the module's `OWN_KAFKA_PARTITIONS`, else 3.
    """
    node = KafkaNode(partitions=getattr(request.module, "OWN_KAFKA_PARTITIONS", 3))
    await node.astart()
    try:
        yield node
    finally:
        await node.astop()


@pytest.fixture(scope="session")
async def postgres() -> AsyncIterator[PostgresCluster]:
    """A private PostgreSQL cluster in a temp dir on a free port, removed afterwards."""
    cluster = PostgresCluster()
    await cluster.astart()
    try:
        yield cluster
    finally:
        await cluster.astop()


@pytest.fixture(params=["sqlite", "postgres"])
async def make_database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresCluster
) -> AsyncIterator[MakeDatabase]:
    """Build a migrated, empty database for a service on SQLite or on PostgreSQL."""
    created: list[Database] = []

    async def make(service: str) -> Database:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / f'{service}-{uuid.uuid4().hex[:6]}.sqlite3'}"
        else:
            url = await postgres.acreate_database(f"{service}_{uuid.uuid4().hex[:10]}")
        await upgrade_async(service, url)
        # Each test database has its own audit key, as each service holds its own.
        database = Database(url, audit_key=AuditKey.generate())
        created.append(database)
        return database

    yield make
    for database in created:
        await database.dispose()
