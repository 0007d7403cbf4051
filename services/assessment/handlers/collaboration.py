"""Letters between counties: each event fills one slot of the letter ledger (consumer's txn)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.collaboration import letter_fact
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.store.collaboration import record_letter
from services.contracts.base import IntegrationEvent
from services.contracts.collaboration import (
    AssistanceAnswered,
    LetterAnswered,
    LetterOverdue,
    LetterSent,
)
from services.runtime.envelope import Envelope

# The events that carry a letter's outcome; due-soon reminders, accepts and declines count
# nothing here.
COLLABORATION_EVENTS: tuple[type[IntegrationEvent], ...] = (
    LetterSent,
    LetterAnswered,
    AssistanceAnswered,
    LetterOverdue,
)


class LetterLedgerHandler:
    """Records a letter event's slot; the inbox applies each event id once."""

    def __init__(self, calendar: AssessmentCalendar) -> None:
        self._calendar = calendar

    async def __call__(
        self, session: AsyncSession, event: IntegrationEvent, envelope: Envelope
    ) -> None:
        """Keep only ids, zone, kind and moments of the event."""
        fact = letter_fact(event, self._calendar)
        if fact is not None:
            await record_letter(session, fact, envelope.id)
