"""Display names of zones, townships and staff, for reports beside their ids."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.store.tables import AssessedUnit, UnitName


async def record_name(
    session: AsyncSession, *, county_id: str, level: Level, subject_id: str, name: str
) -> None:
    """Keep a zone's or staff member's latest name (a rename replaces it)."""
    table = UnitName.__table__  # type: ignore[attr-defined]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values(
        county_id=county_id, level=level.value, subject_id=subject_id, name=name[:200]
    ).on_conflict_do_update(
        index_elements=["county_id", "level", "subject_id"], set_={"name": name[:200]}
    )
    await (await session.connection()).execute(statement)


async def unit_names(session: AsyncSession, *, county_id: str) -> dict[tuple[str, str], str]:
    """(level, id) → name for every named unit of the county (townships from the registry)."""
    names: dict[tuple[str, str], str] = {}
    placed = select(AssessedUnit.level, AssessedUnit.subject_id, AssessedUnit.name).where(
        AssessedUnit.county_id == county_id
    )
    for level, subject, name in (await session.exec(placed)).all():
        if name:
            names[(level, subject)] = name
    named = select(UnitName.level, UnitName.subject_id, UnitName.name).where(
        UnitName.county_id == county_id
    )
    for level, subject, name in (await session.exec(named)).all():
        names[(level, subject)] = name
    return names


async def unit_name(session: AsyncSession, *, county_id: str, level: Level, subject_id: str) -> str:
    """One unit's name, "" when the registry never named it."""
    if level is Level.TOWNSHIP:
        placed = await session.get(AssessedUnit, (county_id, level.value, subject_id))
        return placed.name if placed is not None else ""
    named = await session.get(UnitName, (county_id, level.value, subject_id))
    return named.name if named is not None else ""
