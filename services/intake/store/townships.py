"""Intake's copy of staffing's registry (township → zone), kept current by TownshipPlaced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import bindparam
from sqlalchemy import select as sql_select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.staffing import TownshipPlaced
from services.intake.store.group_commit import GroupCommit, WriteAlone
from services.intake.store.tables import TownshipPlacementRow
from services.runtime.db import Database

# Turns of the event loop without a new look-up that end the wait for a group (the write
# group waits QUIET_TURNS). A look-up group is one cheap read that holds no lock, so waiting
# long buys little, and every report waits here before it can join the write group: at 64 the
# reports reached the writer in bunches behind it. bench/README.md, "Session 19": 16 took
# intake alone from 290-470 to 380-570 reports/s at 4-8 closed-loop clients (3 % fewer at 16),
# and the pipeline held 350 and 400 reports/s where 64 held 350 and 350, at lower latencies.
LOOKUP_QUIET_TURNS = 16


async def record_placement(session: AsyncSession, event: TownshipPlaced) -> None:
    """Apply one placement; a later event for the same day replaces the earlier one."""
    key = (event.county_id, event.township_id, event.effective_from)
    row = await session.get(TownshipPlacementRow, key)
    if row is None:
        row = TownshipPlacementRow(
            county_id=event.county_id,
            township_id=event.township_id,
            effective_from=event.effective_from,
            zone_id=event.zone_id,
            township_name=event.township_name,
            recorded_at=datetime.now(UTC),
        )
    else:
        row.zone_id, row.township_name = event.zone_id, event.township_name
        row.recorded_at = datetime.now(UTC)
    session.add(row)


class TownshipRegistry:
    """Which zone a township belongs to on a day, from the local copy (no call to staffing).

    Concurrent look-ups are answered together by one query (queued as in a group commit):
    nothing is cached, so a placement committed before a call is queued is always seen.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._lookups: GroupCommit[_Asked, tuple[str | None]] = GroupCommit(
            self._zones, quiet_turns=LOOKUP_QUIET_TURNS
        )

    async def zone_of(self, county_id: str, township_id: str, *, on: date) -> str | None:
        """The zone of the placement in force on `on`, or None for a township not placed yet."""
        try:
            (zone,) = await self._lookups.write((county_id, township_id, on))
        except WriteAlone:
            # Its group's query failed: once more alone, where the error shows to the caller.
            (zone,) = (await self._zones([(county_id, township_id, on)]))[0] or (None,)
        return zone

    async def _zones(self, asked: Sequence[_Asked]) -> list[tuple[str | None] | None]:
        """The zone for each (county, township, day), from one query over their placements."""
        parameters = {
            "counties": sorted({c for c, _, _ in asked}),
            "townships": sorted({t for _, t, _ in asked}),
            "until": max(on for _, _, on in asked),
        }
        placements: dict[tuple[str, str], list[tuple[date, str]]] = {}
        async with self._db.session() as session:
            # Core through the connection: plain rows, none of the ORM's execution around them.
            connection = await session.connection()
            for county_id, township_id, effective_from, zone_id in await connection.execute(
                _PLACEMENTS, parameters
            ):
                placements.setdefault((county_id, township_id), []).append(
                    (effective_from, zone_id)
                )
        answers: list[tuple[str | None] | None] = []
        for county_id, township_id, on in asked:
            in_force = [p for p in placements.get((county_id, township_id), []) if p[0] <= on]
            answers.append((max(in_force)[1] if in_force else None,))
        return answers


_Asked = tuple[str, str, date]
# Built once, the lists bound at execution: built per call this query took 200 µs on SQLite,
# built once 47 (a scratch timing); building its clauses and cache key was the most of it.
_PLACEMENTS = sql_select(
    col(TownshipPlacementRow.county_id),
    col(TownshipPlacementRow.township_id),
    col(TownshipPlacementRow.effective_from),
    col(TownshipPlacementRow.zone_id),
).where(
    col(TownshipPlacementRow.county_id).in_(bindparam("counties", expanding=True)),
    col(TownshipPlacementRow.township_id).in_(bindparam("townships", expanding=True)),
    col(TownshipPlacementRow.effective_from) <= bindparam("until"),
)
