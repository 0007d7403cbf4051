"""The letter ledger (help between counties) and the counts read from it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.collaboration import (
    COUNTY_WIDE,
    CollaborationSummary,
    LetterFact,
    LetterRow,
    Side,
    summarise,
    zone_counts,
)
from services.assessment.domain.facts import NOT_A_ZONE
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.store.tables import CollaborationLetter
from services.assessment.store.timeliness import Derived


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def record_letter(session: AsyncSession, fact: LetterFact, event_id: str) -> None:
    """Fill the fact's slot; a slot already holding an earlier (moment, event id) keeps it."""
    table = CollaborationLetter.__table__  # type: ignore[attr-defined]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    connection = await session.connection()
    # Two topics feed one row: insert-or-nothing first, so concurrent first writers never clash.
    await connection.execute(
        insert.values(
            county_id=fact.county_id,
            letter_id=fact.letter_id,
            side=fact.side.value,
            zone_id=COUNTY_WIDE,
            kind="",
            counterpart_county="",
        ).on_conflict_do_nothing()
    )
    row = await session.get(
        CollaborationLetter, (fact.county_id, fact.letter_id, fact.side.value), with_for_update=True
    )
    assert row is not None  # inserted above in this transaction
    slot = fact.slot.value
    held_at: datetime | None = getattr(row, f"{slot}_at")
    held_event: str | None = getattr(row, f"{slot}_event")
    if held_at is None or (fact.at, event_id) < (_utc(held_at), held_event or ""):
        setattr(row, f"{slot}_at", fact.at)
        setattr(row, f"{slot}_quarter", str(fact.quarter))
        setattr(row, f"{slot}_event", event_id)
    # Zone, kind and counterpart are the letter's own: the same in every event that names them.
    if fact.zone_id not in NOT_A_ZONE and (row.zone_id in NOT_A_ZONE or fact.zone_id < row.zone_id):
        row.zone_id = fact.zone_id
    if fact.kind and (not row.kind or fact.kind < row.kind):
        row.kind = fact.kind
    if fact.counterpart_county and (
        not row.counterpart_county or fact.counterpart_county < row.counterpart_county
    ):
        row.counterpart_county = fact.counterpart_county
    session.add(row)


async def letter_rows(session: AsyncSession, *, county_id: str) -> list[LetterRow]:
    """Every letter row of a county."""
    query = select(CollaborationLetter).where(CollaborationLetter.county_id == county_id)
    return [
        LetterRow(
            county_id=row.county_id,
            letter_id=row.letter_id,
            side=Side(row.side),
            zone_id=row.zone_id,
            sent_at=_utc(row.sent_at) if row.sent_at else None,
            sent_quarter=row.sent_quarter,
            sent_event=row.sent_event,
            answered_at=_utc(row.answered_at) if row.answered_at else None,
            answered_quarter=row.answered_quarter,
            answered_event=row.answered_event,
            overdue_quarter=row.overdue_quarter,
            overdue_event=row.overdue_event,
        )
        for row in (await session.exec(query)).all()
    ]


async def collaboration_counts(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str | None = None,
) -> Derived:
    """(zone, zone, kpi) → events, for the zone KPIs a scheme may weigh (zones only)."""
    if level is not Level.ZONE:
        return {}
    counted = zone_counts(await letter_rows(session, county_id=county_id), quarter)
    return {
        (zone, zone, kpi): ids
        for (zone, kpi), ids in counted.items()
        if subject_id is None or zone == subject_id
    }


async def collaboration_summary(
    session: AsyncSession, *, county_id: str, quarter: Quarter
) -> dict[str, CollaborationSummary]:
    """The county's (`*`) and each zone's help between counties in a quarter."""
    return summarise(await letter_rows(session, county_id=county_id), quarter)
