"""Records kept beside the KPI counts: campaign clues, case milestones, limit clocks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.domain.timeliness import (
    DISPOSAL,
    INVESTIGATION,
    breach_clock,
    investigation_finished,
)
from services.assessment.store.campaigns import (
    record_campaign_clue,
    record_campaign_rectification,
    record_milestone,
)
from services.assessment.store.timeliness import record_breach, record_finish
from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseStepRecorded,
    CaseTransferred,
    ClueDisposed,
    DeadlineBreached,
    RectificationClosed,
    RectificationOpened,
    StageChanged,
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


class LimitClockLedger:
    """Records when a step stops a judged clock (disposal, or leaving the investigation)."""

    def __init__(self, calendar: AssessmentCalendar, disposal: bool) -> None:
        self._calendar = calendar
        self._disposal = disposal

    async def __call__(
        self, session: AsyncSession, event: CaseStepRecorded, envelope: Envelope
    ) -> None:
        """Keep the finish beside the counts; the within-limit verdict is taken when read."""
        if self._disposal:
            clock = DISPOSAL
        elif investigation_finished(event.from_stage, event.to_stage):
            clock = INVESTIGATION
        else:
            return
        await record_finish(
            session,
            county_id=event.county_id,
            case_id=event.case_id,
            clock=clock,
            zone_id=event.zone_id,
            township_id=event.township_id,
            quarter=self._calendar.quarter_of(event.occurred_at),
            finished_at=event.occurred_at,
            event_id=envelope.id,
        )


async def limit_breach(session: AsyncSession, event: DeadlineBreached, envelope: Envelope) -> None:
    """A missed disposal or investigation limit, kept per deadline to judge its clock."""
    clock = breach_clock(event.kind, event.record_type)
    if clock is None:
        return
    await record_breach(
        session,
        county_id=event.county_id,
        case_id=event.case_id,
        clock=clock,
        deadline_id=event.deadline_id,
        due_at=event.due_at,
        event_id=envelope.id,
    )


# The rectification source that names a campaign in source_ref (cases' SOURCES).
CAMPAIGN_SOURCE = "campaign"


async def rectification_opened(
    session: AsyncSession, event: RectificationOpened, _: Envelope
) -> None:
    """A rectification item opened under a campaign joins that campaign's progress."""
    if event.source == CAMPAIGN_SOURCE and event.source_ref:
        await record_campaign_rectification(
            session,
            item_id=event.item_id,
            county_id=event.county_id,
            zone_id=event.zone_id,
            campaign_id=event.source_ref,
            opened_at=event.opened_at,
        )


async def rectification_closed(
    session: AsyncSession, event: RectificationClosed, _: Envelope
) -> None:
    """A campaign's rectification item verified done, on time unless overdue."""
    if event.source == CAMPAIGN_SOURCE and event.source_ref:
        await record_campaign_rectification(
            session,
            item_id=event.item_id,
            county_id=event.county_id,
            zone_id=event.zone_id,
            campaign_id=event.source_ref,
            closed_at=event.closed_at,
            overdue=event.overdue,
        )


def ledgers(calendar: AssessmentCalendar | None = None) -> dict[str, Sequence[Ledger]]:
    """Ledgers by event type name."""
    calendar = calendar or AssessmentCalendar()
    leaves_investigation = LimitClockLedger(calendar, disposal=False)
    return {
        ClueRegistered.event_type: [campaign_clue],
        ClueDisposed.event_type: [LimitClockLedger(calendar, disposal=True)],
        CaseFiled.event_type: [milestone("filed")],
        CaseDecided.event_type: [milestone("decided"), leaves_investigation],
        CaseTransferred.event_type: [milestone("transferred"), leaves_investigation],
        CaseClosed.event_type: [milestone("closed"), leaves_investigation],
        StageChanged.event_type: [leaves_investigation],
        DeadlineBreached.event_type: [limit_breach],
        RectificationOpened.event_type: [rectification_opened],
        RectificationClosed.event_type: [rectification_closed],
    }
