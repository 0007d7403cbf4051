"""A letter this county accepted: its team drawn from the county's own pool, freed once answered."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.collaboration import AssistanceLetterClosed, AssistanceTeamRequested
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from services.staffing.domain.draw import DrawRequest, Pool, Stage
from services.staffing.drawing import TeamDrawer, assistance_request_id
from services.staffing.releasing import release_assignments
from services.staffing.store.casework import open_case_assignments
from services.staffing.store.draws import draw_of_request
from services.staffing.store.registry import township_of


class AssistanceTeamHandler:
    """Draws the team for an accepted assistance letter, once, with the usual draw."""

    def __init__(self, drawer: TeamDrawer) -> None:
        self._drawer = drawer

    async def __call__(
        self, session: AsyncSession, event: AssistanceTeamRequested, envelope: Envelope
    ) -> None:
        """Apply the event in the consumer's transaction."""
        request_id = assistance_request_id(event.letter_id)
        # The inbox skips a redelivered event id; this skips the same letter re-sent under a
        # new event id.
        if await draw_of_request(session, request_id, 0) is not None:
            return
        if event.subject_township_id:
            # A township this county does not have would silently exclude nobody (异地办案).
            township = await township_of(session, event.subject_township_id)
            if township is None or township.county_id != event.county_id:
                raise PoisonEvent(
                    f"letter {event.letter_id[:64]}: township "
                    f"{event.subject_township_id[:64]!r} is not one of county "
                    f"{event.county_id[:64]!r}'s; nothing drawn"
                )
        try:
            # The letter stands in for the case: recusals, worked stages and workload are
            # counted per letter id; the whole county is the pool (the letter has no zone).
            request = DrawRequest(
                request_id=request_id,
                case_id=event.letter_id,
                county_id=event.county_id,
                zone_id=event.zone_id,
                stage=Stage.VERIFICATION,
                subject_township_id=event.subject_township_id,
                excluded_township_ids=(
                    (event.subject_township_id,) if event.subject_township_id else ()
                ),
                # No subject key crosses with a letter (only a name may): no declared conflict
                # can match; the asked county's leadership excludes people by recusal.
                subject_key=f"letter:{event.letter_id}",
                team_size=event.team_size,
                pool=Pool.COUNTY,
                on_date=event.accepted_at.date(),
            )
        except (ValidationError, ValueError) as exc:
            raise PoisonEvent(f"letter {event.letter_id} cannot be drawn for: {exc}") from exc
        # The drawer announces it as AssistanceTeamDrawn (the request id says it is a letter's).
        await self._drawer.draw(
            session, request, round_=0, cause="requested", actor=f"event:{envelope.source}"
        )


async def on_assistance_letter_closed(
    session: AsyncSession, event: AssistanceLetterClosed, envelope: Envelope
) -> None:
    """The letter was answered: its team's assignments stop counting as workload.

    A redelivery finds nothing open and changes nothing.
    """
    await release_assignments(
        session,
        await open_case_assignments(session, event.letter_id),
        county_id=event.county_id,
        zone_id=event.zone_id,
        case_id=event.letter_id,
        reason=f"assistance letter {event.outcome}",
        actor=f"event:{envelope.source}",
        at=datetime.now(UTC),
    )
