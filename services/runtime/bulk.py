"""Many rows into one table with one prepared INSERT, bound by the driver (consumers' hot path).

SQLAlchemy's `connection.execute(insert(table), rows)` is one executemany too, but it rebuilds
every row's parameters through its compiled statement (key look-ups, a bind processor call per
value) before the driver sees them: for a batch of 500 clues that was about as much CPU as
SQLite's own work. `BulkInsert` compiles the INSERT once per dialect, applies the same bind
processors (so the stored values are exactly what SQLAlchemy would store) and hands the driver
plain tuples in one `exec_driver_sql` call, which still fires the engine's events (tracing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection


class _Compiled:
    """The INSERT as one dialect spells it, with the processor of each parameter in order."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        if set(names) != set(columns) or len(names) != len(columns):
            # A Python-side column default SQLAlchemy would fill in per row: the rows must
            # give such a column themselves, or this would store something else.
            raise ValueError(
                f"INSERT INTO {table.name} binds {sorted(names)}, rows give {sorted(columns)}"
            )
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names = names
        # Each parameter binds one column (no expanding IN), so a processor is one callable.
        processors = cast(Mapping[str, Callable[[Any], Any]], compiled._bind_processors)
        self.processors = [processors.get(name) for name in names]


class BulkInsert:
    """`INSERT INTO table (columns) VALUES (...)`, run over many rows at once."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    async def rows(self, connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` in one executemany; every row names the columns the first one does.

        Columns the rows leave out get their server default, as with SQLAlchemy's executemany.
        """
        if not rows:
            return
        dialect = connection.dialect
        key = (f"{dialect.name}+{dialect.driver}", tuple(rows[0]))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.table, key[1], dialect)
        names, processors = compiled.names, compiled.processors
        params: list[Any]
        if compiled.positional:
            params = [
                tuple(
                    row[name] if process is None else process(row[name])
                    for name, process in zip(names, processors, strict=True)
                )
                for row in rows
            ]
        else:
            params = [
                {
                    name: row[name] if process is None else process(row[name])
                    for name, process in zip(names, processors, strict=True)
                }
                for row in rows
            ]
        await connection.exec_driver_sql(compiled.sql, params)
