"""Look-ups of many keys at once that PostgreSQL answers with one index probe per key."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ARRAY, Column, Select, bindparam, column, func, literal_column, select, true
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection


def probe_each(columns: Sequence[Column[Any]], keys: Sequence[Column[Any]]) -> Select[Any]:
    """PostgreSQL: `columns` of the rows whose `keys` equal one of the bound key tuples.

    Bind one list per key column, under the column's name plus "s" (`county_ids`,
    `idempotency_keys`), the i-th entries together making the i-th tuple. The keys must be
    the columns of a unique index, so each tuple matches at most one row.

    Why not `key IN (...)`: PostgreSQL keeps a prepared statement's generic plan until the
    table is next analyzed, and one made while the table was small (every fresh database,
    until autovacuum's first ANALYZE) reads the keys through an index on a shorter prefix
    and filters them, for every look-up as the table grows: 9 ms in the pipeline at 12,000
    reports, 14 ms on a scratch table against 0.1 ms for this form (bench/README.md, session
    22). Here each tuple is its own lateral look-up on all the key columns, with LIMIT 1: without
    it the planner flattened the look-up into a hash join over the whole table. Where no
    other index starts with the key's first column (the inbox's primary key), any plan kept
    probes the unique index. Where one does (the report table's county indexes), an empty
    table makes them all cost the same: run the statement with `planned_now`.
    """
    wanted = (
        func.unnest(*[bindparam(f"{key.name}s", type_=ARRAY(key.type)) for key in keys])
        .table_valued(*[column(key.name, key.type) for key in keys])
        .render_derived(name="wanted")
    )
    found = (
        select(*columns)
        .where(*[key == wanted.c[key.name] for key in keys])
        .limit(literal_column("1"))
        .lateral("found")
    )
    return select(*found.c).select_from(wanted.join(found, true()))


async def planned_now(
    connection: AsyncConnection, statement: Select[Any], parameters: Mapping[str, Any]
) -> list[SimpleNamespace]:
    """PostgreSQL: run `statement` in the connection's transaction, planned for this run.

    Prepared statements kept by the driver may switch to a generic plan after their fifth
    run, kept until the table is next analyzed; on a fresh database that plan is made on an
    (almost) empty table, where every index starting with the same column costs the same.
    A statement prepared for one run is planned with its values and the table's size now.
    Costs one more round trip and a plan (well under a millisecond) per run. It runs on the
    driver itself, so the engine's events do not see it: no span with `XIEZUO_SQL_SPANS`.
    """
    sql, positions = _compiled(statement, connection.dialect)
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("planned_now needs an open PostgreSQL connection")
    # SQLAlchemy sends BEGIN with the transaction's first statement: a read before it would
    # run outside the transaction, seeing rows its locks do not cover.
    if not driver.is_in_transaction():
        raise RuntimeError("planned_now runs after a statement of its transaction")
    prepared = await driver.prepare(sql)
    records = await prepared.fetch(*[parameters[name] for name in positions])
    return [SimpleNamespace(**dict(record)) for record in records]


@functools.lru_cache(maxsize=32)
def _compiled(statement: Select[Any], dialect: Dialect) -> tuple[str, list[str]]:
    """The statement's SQL and its parameters' names in order, compiled once per dialect."""
    compiled = statement.compile(dialect=dialect)
    return str(compiled), list(compiled.positiontup or [])
