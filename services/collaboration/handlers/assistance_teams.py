"""AssistanceTeamDrawn from this county's staffing → the team on the asked side's letter."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.letter import Direction
from services.collaboration.store import letters
from services.contracts.staffing import AssistanceTeamDrawn
from services.runtime import audit
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


async def on_assistance_team_drawn(
    session: AsyncSession, event: AssistanceTeamDrawn, envelope: Envelope
) -> None:
    """Record the draw on the letter once (a repeat of the same draw changes nothing)."""
    row = await letters.get(session, event.county_id, event.letter_id)
    if row is None or row.direction != Direction.INBOUND:
        raise PoisonEvent(
            f"county {event.county_id[:64]!r} was asked no letter {event.letter_id[:64]!r}"
        )
    if row.team_draw_id == event.draw_id:
        return
    members = [member.person_id for member in event.members]
    row.team_draw_id = event.draw_id
    row.team_json = json.dumps({"members": members, "reasons": event.reasons}, ensure_ascii=False)
    row.updated_at = datetime.now(UTC)
    session.add(row)
    await audit.append(
        session,
        county_id=row.county_id,
        actor=f"event:{envelope.source}",
        action="letter.team_drawn",
        record_type="letter",
        record_id=row.letter_id,
        detail={"draw_id": event.draw_id, "members": members, "unfillable": event.reasons},
        at=row.updated_at,
    )
