"""Which clue/case each counted event concerns: the way from an explanation to the case file."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.store.tables import (
    CaseTeam,
    CaseWorkStep,
    FormOutcome,
    KpiContribution,
    LimitClock,
)


async def cases_of_events(
    session: AsyncSession, *, county_id: str, event_ids: Collection[str]
) -> dict[str, str]:
    """event id → clue/case id, for the events of one county that concern a case.

    Counted events keep their case on the contribution row; counts judged when read (limits,
    the four forms, staff work, teams) keep it on their own rows. Every lookup goes through an
    index on the event id, so its cost does not grow with the history stored.
    """
    wanted = sorted(set(event_ids))
    if not wanted:
        return {}
    found: dict[str, str] = {}
    sources: list[Any] = [KpiContribution, LimitClock, FormOutcome, CaseWorkStep, CaseTeam]
    for table in sources:
        query = select(table.event_id, table.case_id).where(
            table.county_id == county_id, col(table.event_id).in_(wanted)
        )
        for event_id, case_id in (await session.exec(query)).all():
            if case_id:
                found.setdefault(event_id, case_id)
    return found
