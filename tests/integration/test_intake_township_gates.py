"""A group's township gates in one statement, locked in key order (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import select

from services.intake.store.reports import _hold_townships, gates_statement
from services.intake.store.tables import TownshipGateRow
from tests.conftest import MakeDatabase

GATES = [("c1", "t1"), ("c1", "t2"), ("c1", "t3"), ("c2", "t1")]


async def _counts(make_database: MakeDatabase) -> dict[tuple[str, str], int]:
    database = await make_database("intake")
    async with database.transaction() as session:
        # Stored out of key order, and one gate of the group not stored yet.
        for county_id, township_id in [("c2", "t1"), ("c1", "t3"), ("c1", "t1"), ("c1", "t9")]:
            session.add(
                TownshipGateRow(county_id=county_id, township_id=township_id, submissions=5)
            )
    async with database.transaction() as session:
        await _hold_townships(session, GATES)
    async with database.session() as session:
        rows = (await session.exec(select(TownshipGateRow))).all()
    return {(r.county_id, r.township_id): r.submissions for r in rows}


async def test_a_groups_gates_are_all_taken_and_no_other(make_database: MakeDatabase) -> None:
    counts = await _counts(make_database)
    assert counts == {
        ("c1", "t1"): 6,
        ("c1", "t2"): 1,  # the township's first report opened its gate
        ("c1", "t3"): 6,
        ("c2", "t1"): 6,
        ("c1", "t9"): 5,
    }


async def test_on_postgresql_the_gates_are_locked_after_sorting_by_key(
    make_database: MakeDatabase,
) -> None:
    database = await make_database("intake")
    if database.engine.dialect.name != "postgresql":
        return
    async with database.transaction() as session:
        connection = await session.connection()
        statement = gates_statement(GATES).compile(
            dialect=connection.dialect, compile_kwargs={"literal_binds": True}
        )
        assert "ORDER BY" in str(statement) and "FOR UPDATE" in str(statement)
        plan = [
            line for (line,) in await connection.execute(text(f"EXPLAIN (COSTS OFF) {statement}"))
        ]
    # LockRows takes each row as its input returns it: the input must be the Sort by key.
    lock_rows = next(i for i, line in enumerate(plan) if "LockRows" in line)
    assert "Sort" in plan[lock_rows + 1], plan
    assert "county_id, " in plan[lock_rows + 2] and "township_id" in plan[lock_rows + 2], plan
