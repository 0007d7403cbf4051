"""TeamRequested → a recorded draw → TeamAssigned or TeamUnfillable."""

from __future__ import annotations

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.cases import TeamRequested
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from services.staffing.domain.draw import DrawRequest, Pool, Stage
from services.staffing.drawing import TeamDrawer
from services.staffing.store.draws import draw_of_request


class TeamRequestedHandler:
    """Draws each requested team once, however often the request is delivered."""

    def __init__(self, drawer: TeamDrawer) -> None:
        self._drawer = drawer

    async def __call__(
        self, session: AsyncSession, event: TeamRequested, envelope: Envelope
    ) -> None:
        """Apply the event in the consumer's transaction."""
        # The inbox skips a redelivered event id; this also skips the same request re-sent
        # under a new event id, so a request can only be redrawn by a recorded decline or
        # override.
        if await draw_of_request(session, event.request_id, 0) is not None:
            return
        try:
            request = DrawRequest(
                request_id=event.request_id,
                case_id=event.case_id,
                county_id=event.county_id,
                zone_id=event.zone_id,
                stage=Stage(event.stage),
                subject_township_id=event.subject_township_id,
                excluded_township_ids=tuple(sorted(set(event.excluded_township_ids))),
                subject_key=event.subject_key,
                team_size=event.team_size,
                required_skills=tuple(sorted(set(event.required_skills))),
                excluded_person_ids=tuple(sorted(set(event.excluded_person_ids))),
                pool=Pool(event.pool),
                on_date=event.requested_at.date(),
            )
        except (ValidationError, ValueError) as exc:
            raise PoisonEvent(f"team request {event.request_id} cannot be drawn: {exc}") from exc
        await self._drawer.draw(
            session, request, round_=0, cause="requested", actor=f"event:{envelope.source}"
        )
