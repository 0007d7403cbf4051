"""Many-key look-ups that probe the unique index on PostgreSQL whatever the table held when
the statement's plan was made (stored idempotency keys, a consumer's inbox)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Index, MetaData, String, Table, UniqueConstraint, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from services.intake.store.reports import _REPORTS, _STORED_KEYS_PROBED, ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.vault import Vault
from services.runtime.db import Database
from services.runtime.inbox import _SEEN_PROBED
from services.runtime.keyed_lookup import planned_now, probe_each
from services.runtime.localstack import PostgresCluster
from tests.conftest import MakeDatabase
from tests.integration.intake_submissions import letter_submission

# The trap as the report table sets it: a unique (county_id, key) index, and another index
# that starts with county_id too.
_METADATA = MetaData()
_ITEMS = Table(
    "item",
    _METADATA,
    Column("item_id", String, primary_key=True),
    Column("county_id", String, nullable=False),
    Column("item_key", String, nullable=False),
    Column("prefix", String, nullable=False),
    UniqueConstraint("county_id", "item_key", name="uq_item_county_key"),
    Index("ix_item_county_prefix", "county_id", "prefix"),
    # Never analyzed while the tests run: the state of a fresh database's tables.
    postgresql_with={"autovacuum_enabled": "false"},
)
_KEYS = [_ITEMS.c.county_id, _ITEMS.c.item_key]
_PROBED = probe_each([_ITEMS.c.item_id, *_KEYS], _KEYS)
_IN_LIST = select(_ITEMS.c.item_id).where(
    _ITEMS.c.county_id.in_(bindparam("counties", expanding=True)),
    _ITEMS.c.item_key.in_(bindparam("keys", expanding=True)),
)


@pytest.fixture
async def items(postgres: PostgresCluster) -> AsyncIterator[asyncpg.Connection]:
    """A fresh database with the item table (autovacuum off for it)."""
    url = make_url(await postgres.acreate_database(f"keyed_lookup_{uuid.uuid4().hex[:10]}"))
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    dialect = postgresql.asyncpg.dialect()
    await connection.execute(str(CreateTable(_ITEMS).compile(dialect=dialect)))
    for index in _ITEMS.indexes:
        await connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def intake_on_postgresql(make_database: MakeDatabase) -> Database:
    """A migrated intake database; the SQLite parameter skips (no kept plans there)."""
    database = await make_database("intake")
    if database.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's kept plans; SQLite keeps the IN lists")
    return database


def _sql(statement: Any) -> str:
    compiled = statement.compile(
        dialect=postgresql.asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(compiled)


async def _fill(connection: asyncpg.Connection, first: int, last: int) -> None:
    await connection.execute(
        "INSERT INTO item SELECT 'i' || n, 'c1', 'k' || n, left(md5(n::text), 4)"
        " FROM generate_series($1::int, $2::int) AS n",
        first,
        last,
    )


def _literals(*values: str | list[str]) -> str:
    """SQL literals for EXECUTE's arguments (test values only: no quotes inside)."""

    def one(value: str | list[str]) -> str:
        if isinstance(value, list):
            return "ARRAY[" + ", ".join(f"'{v}'" for v in value) + "]::text[]"
        return f"'{value}'"

    return ", ".join(one(value) for value in values)


async def _kept_plan(
    connection: asyncpg.Connection, sql: str, arguments: str, *, grow: bool = True
) -> str:
    """The plan a statement prepared on a (nearly) empty table keeps as the table grows.

    PostgreSQL plans a prepared statement's first five runs for their values, then may settle
    on a generic plan it keeps until the table is analyzed: this one is made on 20 rows of
    the item table (none of a service's), and the item table then grows to 6,000.
    """
    if grow:
        await _fill(connection, 1, 20)
    await connection.execute(f"PREPARE look_up AS {sql}")
    for _ in range(8):
        await connection.fetch(f"EXECUTE look_up({arguments})")
    if grow:
        await _fill(connection, 21, 6000)
    rows = await connection.fetch(f"EXPLAIN EXECUTE look_up({arguments})")
    await connection.execute("DEALLOCATE look_up")
    return "\n".join(row[0] for row in rows)


async def test_each_key_tuple_finds_its_own_row_and_no_other(
    items: asyncpg.Connection,
) -> None:
    await items.execute(
        "INSERT INTO item VALUES ('a', 'c1', 'k1', 'p'), ('b', 'c1', 'k2', 'p'),"
        " ('c', 'c2', 'k1', 'p'), ('d', 'c2', 'k3', 'p')"
    )
    # (c2, k2) and (c1, k3) are not stored, though each of their parts is: no cross product.
    wanted = [("c1", "k1"), ("c2", "k2"), ("c1", "k3"), ("c2", "k3")]
    rows = await items.fetch(_sql(_PROBED), [c for c, _ in wanted], [k for _, k in wanted])
    assert sorted(tuple(row) for row in rows) == [("a", "c1", "k1"), ("d", "c2", "k3")]
    assert await items.fetch(_sql(_PROBED), [], []) == []


async def test_a_plan_made_on_a_small_table_still_probes_the_unique_index(
    items: asyncpg.Connection,
) -> None:
    keys = [f"new-{n}" for n in range(48)]
    plan = await _kept_plan(items, _sql(_PROBED), _literals(["c1"] * len(keys), keys))
    assert "Nested Loop" in plan and "Index Scan using uq_item_county_key" in plan, plan
    assert "Seq Scan on item" not in plan and "ix_item_county_prefix" not in plan, plan


async def test_an_in_list_plan_made_on_a_small_table_reads_the_county(
    items: asyncpg.Connection,
) -> None:
    """Why the look-ups above are written as probes: the IN list falls into the trap."""
    keys = [f"new-{n}" for n in range(48)]
    sql = _sql(_IN_LIST.params(counties=["c1"], keys=keys))
    plan = await _kept_plan(items, sql, _literals("c1", *keys))
    # Every row of the county read through the shorter index, the keys filtered out after.
    assert "ix_item_county_prefix" in plan and "Filter" in plan, plan


async def test_the_inbox_look_up_keeps_a_plan_that_probes_the_primary_key(
    intake_on_postgresql: Database,
) -> None:
    async with intake_on_postgresql.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        sql = str(_SEEN_PROBED.compile(dialect=connection.dialect))
        arguments = _literals(["intake", "intake"], ["e1", "e2"])
        plan = await _kept_plan(raw.driver_connection, sql, arguments, grow=False)
    assert "Nested Loop" in plan and "Scan using inbox_entry_pkey" in plan, plan
    assert "(consumer = " in plan and "(event_id = " in plan and "Seq Scan" not in plan, plan


async def test_stored_keys_are_looked_up_through_the_unique_index_as_the_table_grows(
    intake_on_postgresql: Database,
) -> None:
    """Planned for each run (`planned_now`), with the table's size now though it has never
    been analyzed: once it holds thousands of reports, a probe of the unique index."""
    db = intake_on_postgresql
    registry = ReportRegistry(db, Vault(bytes(32)), load_rule_book())
    await registry.register(letter_submission("g1"), actor="officer")
    names = [c.name for c in _REPORTS.c]
    copied = {"report_id": "'r-' || n", "idempotency_key": "'bulk-' || n"}
    async with db.engine.connect() as connection:
        # 6,000 copies of the stored report under other keys: the table grows unanalyzed.
        await connection.exec_driver_sql(
            f"INSERT INTO report ({', '.join(names)}) SELECT "
            + ", ".join(copied.get(name, name) for name in names)
            + " FROM report, generate_series(1, 6000) AS n WHERE idempotency_key = 'g1'"
        )
        await connection.commit()
        keys = {"county_ids": ["c1", "c1", "c1"], "idempotency_keys": ["g1", "bulk-7", "new"]}
        sql = _STORED_KEYS_PROBED.params(**keys).compile(
            dialect=connection.dialect, compile_kwargs={"literal_binds": True}
        )
        plan = "\n".join(row[0] for row in await connection.exec_driver_sql(f"EXPLAIN {sql}"))
        found = await planned_now(connection, _STORED_KEYS_PROBED, keys)
    assert "Scan using report_county_id_idempotency_key_key" in plan, plan
    assert "Filter" not in plan and "Seq Scan on report" not in plan, plan
    assert sorted(row.idempotency_key for row in found) == ["bulk-7", "g1"]


async def test_a_stored_key_in_a_later_group_replays_its_report(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), load_rule_book())
    stored = await registry.register(letter_submission("kept"), actor="officer")
    group = [
        letter_submission("kept"),
        *(letter_submission(f"n{n}", name=f"Wang {n}") for n in range(5)),
    ]
    results = await asyncio.gather(*(registry.register(s, actor="officer") for s in group))
    assert results[0].replayed and results[0].report_id == stored.report_id
    assert not any(r.replayed for r in results[1:])
    again = await registry.register(replace(group[3]), actor="officer")
    assert again.replayed and again.report_id == results[3].report_id


async def test_planned_now_refuses_to_read_before_its_transaction_has_begun(
    intake_on_postgresql: Database,
) -> None:
    keys = {"county_ids": ["c1"], "idempotency_keys": ["k1"]}
    async with intake_on_postgresql.engine.connect() as connection:
        with pytest.raises(RuntimeError, match="after a statement of its transaction"):
            await planned_now(connection, _STORED_KEYS_PROBED, keys)
        await connection.exec_driver_sql("SELECT 1")
        assert await planned_now(connection, _STORED_KEYS_PROBED, keys) == []
