"""BulkInsert stores exactly what SQLAlchemy's own executemany stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.assessment.store.tables import KpiTally
from services.cases.store.tables import ClueRow
from services.runtime.bulk import BulkInsert, dialect_insert
from services.runtime.db import Database
from services.runtime.messaging_tables import InboxEntry
from tests.conftest import MakeDatabase

INBOX: Table = InboxEntry.__table__  # type: ignore[attr-defined]
CLUE: Table = ClueRow.__table__  # type: ignore[attr-defined]


def _inbox_rows(consumer: str) -> list[dict[str, Any]]:
    # An aware time in another zone and a naive-free UTC one: both go through the bind
    # processors SQLAlchemy would apply.
    return [
        {
            "consumer": consumer,
            "event_id": f"event-{n}",
            "event_type": "intake.clue_registered.v1",
            "county_id": "c-1",
            "processed_at": datetime(2026, 12, 4, 17, n, 5, 123456, tzinfo=UTC)
            if n % 2
            else datetime(2026, 12, 5, 1, n, tzinfo=timezone(timedelta(hours=8))),
        }
        for n in range(5)
    ]


async def _insert_both_ways(
    database: Database, rows: Callable[[str], list[dict[str, Any]]]
) -> None:
    """Rows of "by-sqlalchemy" through its executemany, of "by-bulk" through BulkInsert."""
    async with database.transaction() as session:
        connection = await session.connection()
        await connection.execute(insert(INBOX), rows("by-sqlalchemy"))
        await BulkInsert(INBOX).rows(connection, rows("by-bulk"))


async def _raw_rows(
    connection: AsyncConnection, consumer: str, columns: str
) -> list[tuple[Any, ...]]:
    """A consumer's inbox rows as the database holds them, by event id."""
    raw = await connection.execute(
        text(f"SELECT {columns} FROM inbox_entry WHERE consumer = :consumer ORDER BY event_id"),
        {"consumer": consumer},
    )
    return [tuple(row) for row in raw]


async def test_bulk_rows_read_back_as_sqlalchemys_own(make_database: MakeDatabase) -> None:
    database = await make_database("cases")
    await _insert_both_ways(database, _inbox_rows)
    async with database.transaction() as session:
        connection = await session.connection()
        stored = {}
        for consumer in ("by-sqlalchemy", "by-bulk"):
            # Raw columns as the database holds them, and as the ORM reads them back.
            raw = await _raw_rows(
                connection, consumer, "event_id, event_type, county_id, processed_at"
            )
            read = await connection.execute(
                INBOX.select().where(INBOX.c.consumer == consumer).order_by(INBOX.c.event_id)
            )
            stored[consumer] = (raw, [tuple(row)[1:] for row in read])
    assert stored["by-bulk"] == stored["by-sqlalchemy"]
    assert len(stored["by-bulk"][0]) == 5


async def test_rows_without_a_python_side_default_column_are_refused(
    make_database: MakeDatabase,
) -> None:
    # clue.repeat_count has a Python-side default SQLAlchemy fills in per row; a driver-bound
    # insert cannot, so rows that leave it out are refused before anything is sent.
    database = await make_database("cases")
    row = {column.name: None for column in CLUE.columns if column.name != "repeat_count"}
    async with database.transaction() as session:
        with pytest.raises(ValueError, match="repeat_count"):
            await BulkInsert(CLUE).rows(await session.connection(), [row])


async def test_an_upsert_built_per_dialect_takes_rows_as_tuples(
    make_database: MakeDatabase,
) -> None:
    # The tally's upsert through BulkInsert: the same key twice adds up, columns given in an
    # order other than the table's still land in their own columns.
    database = await make_database("assessment")
    tally: Table = KpiTally.__table__  # type: ignore[attr-defined]
    write = BulkInsert(
        tally,
        lambda dialect: dialect_insert(dialect, tally).on_conflict_do_update(
            index_elements=["county_id", "quarter", "level", "subject_id", "zone_id", "kpi"],
            set_={"value": tally.c.value + text("excluded.value")},
        ),
    )
    columns = ("value", "kpi", "zone_id", "subject_id", "level", "quarter", "county_id")
    async with database.transaction() as session:
        connection = await session.connection()
        await write.values(
            connection, columns, [(2, "clues_received", "z-1", "z-1", "zone", "2026Q1", "c-1")]
        )
        await write.values(
            connection,
            columns,
            [
                (3, "clues_received", "z-1", "z-1", "zone", "2026Q1", "c-1"),
                (5, "clues_received", "z-2", "z-2", "zone", "2026Q1", "c-1"),
            ],
        )
    async with database.transaction() as session:
        rows = await (await session.connection()).execute(
            tally.select().where(tally.c.county_id == "c-1").order_by(tally.c.zone_id)
        )
        stored = [(row.zone_id, row.subject_id, row.level, row.quarter, row.value) for row in rows]
    assert stored == [("z-1", "z-1", "zone", "2026Q1", 5), ("z-2", "z-2", "zone", "2026Q1", 5)]


async def test_rows_sharing_one_value_each_get_their_own_converted_value(
    make_database: MakeDatabase,
) -> None:
    # A batch's rows often share one datetime object (the inbox's processed_at), converted
    # once: a run of one object, another, then the first again must each store their own,
    # as SQLAlchemy's executemany stores them.
    database = await make_database("cases")
    first = datetime(2026, 12, 4, 17, 1, 5, 123456, tzinfo=UTC)
    other = datetime(2026, 12, 5, 1, 2, tzinfo=timezone(timedelta(hours=8)))

    def rows(consumer: str) -> list[dict[str, Any]]:
        return [
            {
                "consumer": consumer,
                "event_id": f"event-{n}",
                "event_type": "intake.clue_registered.v1",
                "county_id": "c-1",
                "processed_at": moment,
            }
            for n, moment in enumerate([first, first, other, first, other])
        ]

    await _insert_both_ways(database, rows)
    async with database.transaction() as session:
        connection = await session.connection()
        stored = {
            consumer: await _raw_rows(connection, consumer, "event_id, processed_at")
            for consumer in ("by-sqlalchemy", "by-bulk")
        }
    assert stored["by-bulk"] == stored["by-sqlalchemy"]
    assert len({moment for _, moment in stored["by-bulk"]}) == 2
