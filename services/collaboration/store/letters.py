"""Letter rows: one per county side, read through the (county, letter) key or the list index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.store.tables import LetterRow


async def get(session: AsyncSession, county_id: str, letter_id: str) -> LetterRow | None:
    """One county's side of a letter."""
    return await session.get(LetterRow, (county_id, letter_id))


async def outbound_by_id(session: AsyncSession, letter_id: str) -> LetterRow | None:
    """The asking side of a letter, whichever county asked (the city commission's view)."""
    return (
        await session.exec(
            select(LetterRow).where(
                col(LetterRow.letter_id) == letter_id, col(LetterRow.direction) == "outbound"
            )
        )
    ).first()


async def page(
    session: AsyncSession,
    *,
    counties: Sequence[str],
    direction: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[LetterRow]:
    """Letters of these counties on one side, oldest first, after a page position."""
    query = select(LetterRow).where(
        col(LetterRow.county_id).in_(list(counties)), col(LetterRow.direction) == direction
    )
    if after is not None:
        at, letter_id = after
        query = query.where(
            (col(LetterRow.requested_at) > at)
            | ((col(LetterRow.requested_at) == at) & (col(LetterRow.letter_id) > letter_id))
        )
    query = query.order_by(col(LetterRow.requested_at), col(LetterRow.letter_id)).limit(limit)
    return list((await session.exec(query)).all())


def fields_of(row: LetterRow) -> dict[str, str]:
    """The letter's allowlisted fields."""
    return dict(json.loads(row.fields_json))


def attachments_of(row: LetterRow) -> list[dict[str, object]]:
    """The answer's attachment metadata."""
    return list(json.loads(row.attachments_json))
