"""An accepted letter asks the asked county's own staffing for a team (a local event)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.letter_kinds import KindRule
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import AssistanceLetterClosed, AssistanceTeamRequested
from services.runtime.outbox import record_event

SOURCE = "xiezuo/collaboration"


def request_team(
    session: AsyncSession,
    row: LetterRow,
    rule: KindRule,
    *,
    subject_township_id: str,
    now: datetime,
) -> AssistanceTeamRequested:
    """Record the team request for the accepted inbound `row`, in the caller's transaction.

    Only what the draw needs goes to staffing: the letter id, its kind, the team size the
    kind's rule names and the subject's township in this county when leadership named it.
    """
    event = AssistanceTeamRequested(
        county_id=row.county_id,
        letter_id=row.letter_id,
        kind=rule.kind.value,
        subject_township_id=subject_township_id,
        team_size=rule.team_size,
        accepted_at=now,
    )
    record_event(session, event, source=SOURCE, occurred_at=now)
    return event


def close_team(session: AsyncSession, row: LetterRow, *, now: datetime) -> None:
    """The inbound `row` was answered: this county's staffing frees the letter's team."""
    record_event(
        session,
        AssistanceLetterClosed(
            county_id=row.county_id, letter_id=row.letter_id, outcome="answered", closed_at=now
        ),
        source=SOURCE,
        occurred_at=now,
    )
