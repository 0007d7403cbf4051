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
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

# Matches no value (not even None): the start of a run of rows' values.
_NOTHING = object()


class _Compiled:
    """The INSERT as one dialect spells it, and how a row in `columns` order binds to it."""

    def __init__(self, statement: Insert, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        if set(names) != set(columns) or len(names) != len(columns):
            # A Python-side column default SQLAlchemy would fill in per row: the rows must
            # give such a column themselves, or this would store something else.
            raise ValueError(
                f"INSERT INTO {statement.table} binds {sorted(names)}, rows give {sorted(columns)}"
            )
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names = names
        # Each parameter binds one column (no expanding IN), so a processor is one callable.
        processors = cast(Mapping[str, Callable[[Any], Any]], compiled._bind_processors)
        # Per parameter in the statement's order: where its value sits in a row, its processor.
        self.binds = [(columns.index(name), processors.get(name)) for name in names]
        # A row's values in the statement's order in one C call, then only the columns that
        # have a processor converted (a generator over every value cost more than SQLite).
        self._ordered = _tuple_getter([at for at, _ in self.binds])
        self._processed = [
            (place, process) for place, (_, process) in enumerate(self.binds) if process
        ]

    def parameters(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """The driver's parameters for rows given in `columns` order."""
        ordered, processed = self._ordered, self._processed
        if not processed:
            values = [ordered(row) for row in rows]
        else:
            values = []
            # The last value each processor converted: a batch's rows often share one object
            # (the inbox rows' processed_at), converted once instead of once per row.
            last: list[tuple[Any, Any]] = [(_NOTHING, None)] * len(processed)
            for row in rows:
                value = list(ordered(row))
                for at, (place, process) in enumerate(processed):
                    raw = value[place]
                    seen, converted = last[at]
                    if raw is not seen:
                        converted = process(raw)
                        last[at] = (raw, converted)
                    value[place] = converted
                values.append(tuple(value))
        if self.positional:
            return values
        return [dict(zip(self.names, row, strict=True)) for row in values]


def _tuple_getter(keys: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """`row -> (row[keys[0]], row[keys[1]], ...)`, always a tuple (itemgetter's is not for a
    single key)."""
    if len(keys) == 1:
        (key,) = keys
        return lambda row: (row[key],)
    return cast(Callable[[Any], tuple[Any, ...]], itemgetter(*keys))


def dialect_insert(dialect: Dialect, table: Table) -> postgresql.Insert | sqlite.Insert:
    """`table`'s INSERT in the dialect's own construct, which has ON CONFLICT: PostgreSQL's, or
    SQLite's for anything else (the two databases the services run on)."""
    return (postgresql if dialect.name == "postgresql" else sqlite).insert(table)


class BulkInsert:
    """`INSERT INTO table (columns) VALUES (...)`, run over many rows at once.

    `statement` builds the INSERT in a dialect's own construct when it needs one (an upsert's
    ON CONFLICT clause); by default a plain INSERT.
    """

    def __init__(self, table: Table, statement: Callable[[Dialect], Insert] | None = None) -> None:
        self.table = table
        self._statement = statement or (lambda _dialect: insert(table))
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    async def rows(self, connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` in one executemany; every row names the columns the first one does.

        Columns the rows leave out get their server default, as with SQLAlchemy's executemany.
        """
        if rows:
            columns = tuple(rows[0])
            await self.values(connection, columns, list(map(_tuple_getter(columns), rows)))

    async def values(
        self, connection: AsyncConnection, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert `rows`, each a sequence of values in `columns`' order, in one executemany."""
        if not rows:
            return
        dialect = connection.dialect
        key = (f"{dialect.name}+{dialect.driver}", tuple(columns))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self._statement(dialect), key[1], dialect)
        await connection.exec_driver_sql(compiled.sql, compiled.parameters(rows))
