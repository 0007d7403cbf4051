"""Intake's copy of staffing's registry (township → zone), kept current by TownshipPlaced."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.staffing import TownshipPlaced
from services.intake.store.tables import TownshipPlacementRow
from services.runtime.db import Database


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
    """Which zone a township belongs to on a day, from the local copy (no call to staffing)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def zone_of(self, county_id: str, township_id: str, *, on: date) -> str | None:
        """The zone of the placement in force on `on`, or None for a township not placed yet."""
        async with self._db.session() as session:
            query = (
                select(TownshipPlacementRow.zone_id)
                .where(
                    TownshipPlacementRow.county_id == county_id,
                    TownshipPlacementRow.township_id == township_id,
                    col(TownshipPlacementRow.effective_from) <= on,
                )
                .order_by(col(TownshipPlacementRow.effective_from).desc())
                .limit(1)
            )
            return (await session.exec(query)).first()
