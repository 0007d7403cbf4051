"""Writing and reading the county registry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.staffing import TownshipPlaced, UnitNamed
from services.runtime import audit
from services.runtime.outbox import record_event
from services.staffing.domain.county_file import CountyRegistry
from services.staffing.domain.registry import Person
from services.staffing.store.tables import (
    PersonRow,
    PersonStatusRow,
    TownshipRow,
    VillageRow,
    ZoneRow,
)

SOURCE = "xiezuo/staffing"


async def import_county(session: AsyncSession, county: CountyRegistry, *, actor: str) -> int:
    """Insert or update every row of the county in the caller's transaction; rows written."""
    now = datetime.now(UTC)
    written = 0
    for zone in county.zones:
        await session.merge(
            ZoneRow(
                zone_id=zone.zone_id,
                county_id=county.county_id,
                name=zone.name,
                chief_id=zone.chief_id,
                deputy_id=zone.deputy_id,
            )
        )
        record_event(
            session,
            UnitNamed(
                county_id=county.county_id,
                zone_id=zone.zone_id,
                kind="zone",
                unit_id=zone.zone_id,
                name=zone.name,
            ),
            source=SOURCE,
            occurred_at=now,
        )
        written += 1
    for township in county.townships:
        await session.merge(
            TownshipRow(
                township_id=township.township_id,
                county_id=county.county_id,
                zone_id=township.zone_id,
                name=township.name,
                effective_from=township.effective_from,
            )
        )
        # Intake routes reports by township; informants are not in this event.
        record_event(
            session,
            TownshipPlaced(
                county_id=county.county_id,
                zone_id=township.zone_id,
                township_id=township.township_id,
                township_name=township.name,
                effective_from=township.effective_from,
            ),
            source=SOURCE,
            occurred_at=now,
        )
        written += 1
    for village in county.villages:
        await session.merge(
            VillageRow(
                village_id=village.village_id,
                county_id=county.county_id,
                township_id=village.township_id,
                name=village.name,
            )
        )
        written += 1
    for person in county.people:
        await save_person(session, person, now=now)
        written += 1
    await audit.append(
        session,
        county_id=county.county_id,
        actor=actor,
        action="registry.imported",
        record_type="county",
        record_id=county.county_id,
        detail={
            "zones": len(county.zones),
            "townships": len(county.townships),
            "villages": len(county.villages),
            "people": len(county.people),
        },
        at=now,
    )
    return written


async def save_person(session: AsyncSession, person: Person, *, now: datetime) -> PersonRow:
    """Insert or replace one person and their status periods."""
    row = await session.merge(
        PersonRow(
            person_id=person.person_id,
            county_id=person.county_id,
            zone_id=person.zone_id,
            home_township_id=person.home_township_id,
            village_id=person.village_id,
            name=person.name,
            roles=json.dumps(sorted(person.roles)),
            skills=json.dumps(sorted(person.skills)),
            workload_cap=person.workload_cap,
            informant=person.is_informant,
            updated_at=now,
        )
    )
    if not person.is_informant and person.name.strip():
        # Assessment's reports show staff names beside ids; an informant is never named.
        record_event(
            session,
            UnitNamed(
                county_id=person.county_id,
                zone_id=person.zone_id or "",
                kind="person",
                unit_id=person.person_id,
                name=person.name.strip()[:200],
            ),
            source=SOURCE,
            occurred_at=now,
        )
    await session.exec(
        delete(PersonStatusRow).where(col(PersonStatusRow.person_id) == person.person_id)
    )
    for period in person.statuses:
        session.add(
            PersonStatusRow(
                person_id=person.person_id,
                status=period.status.value,
                start=period.start,
                end=period.end,
            )
        )
    return row


async def get_person(session: AsyncSession, person_id: str) -> PersonRow | None:
    """One person by id."""
    return await session.get(PersonRow, person_id)


async def statuses_of(session: AsyncSession, person_id: str) -> list[PersonStatusRow]:
    """A person's status periods, oldest first."""
    query = (
        select(PersonStatusRow)
        .where(PersonStatusRow.person_id == person_id)
        .order_by(col(PersonStatusRow.start))
    )
    return list((await session.exec(query)).all())


async def page_people(
    session: AsyncSession,
    *,
    county_id: str,
    zone_ids: Sequence[str] | None,
    include_informants: bool,
    after: str,
    limit: int,
) -> list[PersonRow]:
    """People of a county (optionally some zones) ordered by id, after a cursor."""
    query = select(PersonRow).where(PersonRow.county_id == county_id)
    if zone_ids is not None:
        query = query.where(col(PersonRow.zone_id).in_(list(zone_ids)))
    if not include_informants:
        query = query.where(col(PersonRow.informant).is_(False))
    if after:
        query = query.where(col(PersonRow.person_id) > after)
    return list((await session.exec(query.order_by(col(PersonRow.person_id)).limit(limit))).all())


async def zone_of(session: AsyncSession, zone_id: str) -> ZoneRow | None:
    """One zone by id."""
    return await session.get(ZoneRow, zone_id)


# The zone of a person's events when they belong to no zone (county staff): the whole county.
COUNTY_WIDE = "*"


async def event_zone_of(session: AsyncSession, person: PersonRow) -> str:
    """The zone a person's training and attendance are published under; never empty.

    Their home township's zone; else the zone they lead (a zone chief or deputy usually sits on
    the county commission and has no home township); else `*`, the county as a whole.
    """
    if person.zone_id:
        return person.zone_id
    led = await session.exec(
        select(ZoneRow.zone_id)
        .where(ZoneRow.county_id == person.county_id)
        .where(
            (col(ZoneRow.chief_id) == person.person_id)
            | (col(ZoneRow.deputy_id) == person.person_id)
        )
        .order_by(col(ZoneRow.zone_id))
        .limit(1)
    )
    return led.first() or COUNTY_WIDE


async def township_of(session: AsyncSession, township_id: str) -> TownshipRow | None:
    """One township by id."""
    return await session.get(TownshipRow, township_id)


async def village_of(session: AsyncSession, village_id: str) -> VillageRow | None:
    """One village by id."""
    return await session.get(VillageRow, village_id)


async def page_zones(
    session: AsyncSession, *, county_id: str, after: str, limit: int
) -> list[ZoneRow]:
    """A county's zones by id, after a cursor."""
    query = select(ZoneRow).where(ZoneRow.county_id == county_id)
    if after:
        query = query.where(col(ZoneRow.zone_id) > after)
    return list((await session.exec(query.order_by(col(ZoneRow.zone_id)).limit(limit))).all())


async def page_townships(
    session: AsyncSession, *, county_id: str, zone_id: str, after: str, limit: int
) -> list[TownshipRow]:
    """A county's (or one zone's) townships by id, after a cursor."""
    query = select(TownshipRow).where(TownshipRow.county_id == county_id)
    if zone_id:
        query = query.where(TownshipRow.zone_id == zone_id)
    if after:
        query = query.where(col(TownshipRow.township_id) > after)
    query = query.order_by(col(TownshipRow.township_id)).limit(limit)
    return list((await session.exec(query)).all())


async def people_of_township(session: AsyncSession, township_id: str) -> list[PersonRow]:
    """Everyone whose home township this is."""
    query = select(PersonRow).where(PersonRow.home_township_id == township_id)
    return list((await session.exec(query.order_by(col(PersonRow.person_id)))).all())
