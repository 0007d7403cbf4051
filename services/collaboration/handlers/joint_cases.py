"""Joint-case records from the other county, and this county's staffing share of the team.

Records are verified exactly like letters (addressing, source, Ed25519 signature against the
network in force); a record that fails, or does not fit the joint case's state, raises
PoisonEvent: dead-lettered with its reason, nothing changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.handlers.assistance_teams import on_assistance_team_drawn
from services.collaboration.handlers.letters import LetterRecordHandler
from services.collaboration.joint_cases import JointCaseDesk
from services.collaboration.letters import LetterDesk
from services.collaboration.store import joint_cases
from services.collaboration.store.joint_cases import JointCaseRow
from services.collaboration.store.network import current_network
from services.contracts.collaboration import (
    CrossCountyRecord,
    JointCaseAccepted,
    JointCaseOpened,
    JointShareDrawn,
)
from services.contracts.staffing import AssistanceTeamDrawn
from services.runtime import audit
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


class JointRecordHandler:
    """Verifies and applies the joint-case records addressed to the counties served here."""

    def __init__(self, desk: LetterDesk) -> None:
        self._desk = desk
        self._letters = LetterRecordHandler(desk)

    async def __call__(
        self, session: AsyncSession, event: CrossCountyRecord, envelope: Envelope
    ) -> None:
        """Verify, then apply; PoisonEvent when anything fails."""
        network = await current_network(session)
        if network is None:
            raise PoisonEvent("no-network: no network file imported here; import it, then replay")
        if network.member(event.county_id) is None:
            raise PoisonEvent(f"misaddressed: {event.county_id[:64]!r} is not a member county")
        if event.county_id not in self._desk.keys.counties:
            return  # another deployment's county on a shared broker
        self._letters.verify(network, event, envelope)
        now = datetime.now(UTC)
        row = await joint_cases.get(session, event.county_id, event.letter_id)
        if isinstance(event, JointCaseOpened):
            if row is not None:
                raise PoisonEvent(f"replayed: joint case {event.letter_id!r} was already opened")
            session.add(
                JointCaseRow(
                    county_id=event.county_id,
                    joint_id=event.letter_id,
                    role="partner",
                    other_county=event.from_county,
                    draw_key=f"{event.letter_id}-p",
                    state="received",
                    opened_at=event.opened_at,
                    updated_at=now,
                )
            )
            action = "joint_case.received"
        else:
            if row is None or row.other_county != event.from_county:
                raise PoisonEvent(
                    f"misaddressed: {event.from_county!r} shares no joint case "
                    f"{event.letter_id[:64]!r} with {event.county_id!r}"
                )
            if isinstance(event, JointCaseAccepted):
                if row.role != "opener" or row.state != "opened":
                    raise PoisonEvent(f"replayed: joint case {event.letter_id!r} is {row.state}")
                row.state = "accepted"
                action = "joint_case.joined"
            elif isinstance(event, JointShareDrawn):
                if row.other_members:
                    raise PoisonEvent(f"replayed: {event.from_county!r}'s share is already in")
                row.other_members = json.dumps(event.person_ids)
                action = "joint_case.share_received"
            else:
                raise PoisonEvent(f"unexpected record {type(event).__name__}")
            row.updated_at = now
            session.add(row)
        await audit.append(
            session,
            county_id=event.county_id,
            actor=f"county:{event.from_county}",
            action=action,
            record_type="joint_case",
            record_id=event.letter_id,
            detail={"other_county": event.from_county},
            at=now,
        )


class TeamDrawnHandler:
    """A draw of this county's staffing: a joint case's share, else a letter's team."""

    def __init__(self, desk: JointCaseDesk) -> None:
        self._desk = desk

    async def __call__(
        self, session: AsyncSession, event: AssistanceTeamDrawn, envelope: Envelope
    ) -> None:
        """Record the share and send it across once; letters go on as before."""
        row = await joint_cases.by_draw_key(session, event.county_id, event.letter_id)
        if row is None:
            await on_assistance_team_drawn(session, event, envelope)
            return
        if row.own_members:
            return  # the same draw delivered again
        network = await current_network(session)
        if network is None:
            raise PoisonEvent("no-network: no network file imported here; import it, then replay")
        person_ids = [member.person_id for member in event.members]
        now = datetime.now(UTC)
        await self._desk.share_drawn(session, network, row, person_ids, now=now)
        await audit.append(
            session,
            county_id=row.county_id,
            actor=f"event:{envelope.source}",
            action="joint_case.share_drawn",
            record_type="joint_case",
            record_id=row.joint_id,
            detail={"draw_id": event.draw_id, "members": person_ids, "unfillable": event.reasons},
            at=now,
        )
