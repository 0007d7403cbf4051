"""Records kept beside the KPI counts for campaign views: campaign clues and case milestones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.store.campaigns import record_campaign_clue, record_milestone
from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseStepRecorded,
    CaseTransferred,
)
from services.contracts.intake import ClueRegistered
from services.runtime.envelope import Envelope

Ledger = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]


async def campaign_clue(session: AsyncSession, event: ClueRegistered, _: Envelope) -> None:
    """A clue reported under a special campaign joins that campaign's view."""
    if event.campaign_id:
        await record_campaign_clue(
            session,
            clue_id=event.clue_id,
            county_id=event.county_id,
            zone_id=event.zone_id,
            campaign_id=event.campaign_id,
            categories=event.allegation_categories,
            registered_at=event.registered_at,
        )


def milestone(name: str) -> Ledger:
    """A ledger that records the case step as milestone `name`."""

    async def record(session: AsyncSession, event: CaseStepRecorded, envelope: Envelope) -> None:
        record_milestone(
            session,
            case_id=event.case_id,
            milestone=name,
            event_id=envelope.id,
            county_id=event.county_id,
            occurred_at=event.occurred_at,
        )

    return record


def ledgers() -> dict[str, Sequence[Ledger]]:
    """Ledgers by event type name."""
    return {
        ClueRegistered.event_type: [campaign_clue],
        CaseFiled.event_type: [milestone("filed")],
        CaseDecided.event_type: [milestone("decided")],
        CaseTransferred.event_type: [milestone("transferred")],
        CaseClosed.event_type: [milestone("closed")],
    }
