"""Joint-case records from the other county (or the city), and this county's share of the team.

Records are admitted like every cross-county record (handlers/cross_county.py: network,
addressing, Ed25519 signature); a joint case the city commission opened is checked against
the city's key in the network file instead, and the city may send nothing else. A record
that fails, carries a kind or share outside the network and the rules, or does not fit the
joint case's state raises PoisonEvent: dead-lettered with its reason, nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.joint_case import OPEN_STATES, JointKind, Role, State
from services.collaboration.domain.network import Network
from services.collaboration.domain.signing import signed_bytes, verify
from services.collaboration.handlers.assistance_teams import on_assistance_team_drawn
from services.collaboration.handlers.cross_county import audit_received, check_signed
from services.collaboration.joint_cases import JointCaseDesk
from services.collaboration.letters import source_of
from services.collaboration.store import joint_cases
from services.collaboration.store.joint_cases import JointCaseRow
from services.collaboration.store.network import current_network
from services.contracts.collaboration import (
    CrossCountyRecord,
    JointCaseAccepted,
    JointCaseClosed,
    JointCaseDeclined,
    JointCaseOpened,
    JointShareDrawn,
)
from services.contracts.staffing import AssistanceTeamDrawn
from services.runtime import audit
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


def _check_city_signed(network: Network, event: JointCaseOpened, envelope: Envelope) -> None:
    """A joint case the city opened: its source and its key in the network file."""
    key = network.city_public_key()
    if key is None:
        raise PoisonEvent(
            f"misaddressed: the network lists no signing key for the city {event.from_county!r}"
        )
    if envelope.source != source_of(event.from_county):
        raise PoisonEvent(
            f"misaddressed: source {envelope.source[:100]!r} does not name {event.from_county!r}"
        )
    if not event.signature:
        raise PoisonEvent("unsigned: the record carries no signature")
    message = signed_bytes(
        event_id=envelope.id,
        event_type=envelope.type,
        source=envelope.source,
        subject=envelope.subject,
        payload=json.loads(envelope.data),
    )
    if not verify(key, message, event.signature):
        raise PoisonEvent(
            f"bad-signature: not signed by the city's key in network version {network.version}"
        )


def _draw_key(joint_id: str, county_id: str, *, by_city: bool) -> str:
    """The share's draw key: unique per county, as staffing keys its draws on it alone."""
    if not by_city:
        return f"{joint_id}-p"
    # Both counties join a city-opened case: each share needs its own key (≤ 64 characters).
    return f"{joint_id}-{hashlib.sha256(county_id.encode()).hexdigest()[:12]}"


class JointRecordHandler:
    """Verifies and applies the joint-case records addressed to the counties served here."""

    def __init__(self, desk: JointCaseDesk) -> None:
        self._desk = desk

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
        if isinstance(event, JointCaseOpened) and event.from_county == network.city_id:
            _check_city_signed(network, event, envelope)
        else:
            check_signed(network, event, envelope)
        now = datetime.now(UTC)
        row = await joint_cases.get(session, event.county_id, event.letter_id)
        detail: dict[str, object]
        if isinstance(event, JointCaseOpened):
            if row is not None:
                raise PoisonEvent(f"replayed: joint case {event.letter_id!r} was already opened")
            row = self._received(network, event, now)
            action, detail = "joint_case.received", {"kind": row.kind, "opened_by": row.opened_by}
        else:
            if row is None or row.other_county != event.from_county:
                raise PoisonEvent(
                    f"misaddressed: {event.from_county!r} shares no joint case "
                    f"{event.letter_id[:64]!r} with {event.county_id!r}"
                )
            action, detail = self._apply(session, row, event, now)
            row.updated_at = now
        session.add(row)
        await audit_received(
            session,
            event,
            action=action,
            record_type="joint_case",
            detail={"other_county": event.from_county, **detail},
            at=now,
        )

    def _received(self, network: Network, event: JointCaseOpened, now: datetime) -> JointCaseRow:
        by_city = event.from_county == network.city_id
        other = event.partner_county if by_city else event.from_county
        if not by_city and event.partner_county:
            raise PoisonEvent("misaddressed: only the city names a partner county")
        if event.kind is None:
            raise PoisonEvent("outside-allowlist: a joint case must name its kind")
        kind = JointKind(event.kind)
        if network.member(other) is None or other == event.county_id:
            raise PoisonEvent(f"misaddressed: {other[:64]!r} cannot be the partner county")
        if not network.covers_joint(event.county_id, other, kind):
            raise PoisonEvent(f"outside-allowlist: no agreement covers {kind.value} joint cases")
        if set(event.shares) != {event.county_id, other}:
            raise PoisonEvent("outside-allowlist: the shares must name exactly the two counties")
        try:
            shares = {c: self._desk.rules.share(kind, n) for c, n in event.shares.items()}
        except ValueError as refused:
            raise PoisonEvent(f"outside-allowlist: {refused}") from refused
        return JointCaseRow(
            county_id=event.county_id,
            joint_id=event.letter_id,
            role=Role.PARTNER,
            other_county=other,
            draw_key=_draw_key(event.letter_id, event.county_id, by_city=by_city),
            state=State.RECEIVED,
            opened_at=event.opened_at,
            updated_at=now,
            kind=kind.value,
            own_share=shares[event.county_id],
            other_share=shares[other],
            opened_by=event.from_county,
        )

    def _apply(
        self, session: AsyncSession, row: JointCaseRow, event: CrossCountyRecord, now: datetime
    ) -> tuple[str, dict[str, object]]:
        """The other county's step on this side's row: the audit action and its detail."""
        desk = self._desk
        if isinstance(event, JointCaseAccepted):
            by_city = row.role == Role.PARTNER and row.opened_by != row.other_county
            joinable = (row.role == Role.OPENER and row.state == State.OPENED) or (
                by_city and row.state in (State.RECEIVED, State.ACCEPTED)
            )
            if not joinable or row.other_joined:
                raise PoisonEvent(f"replayed: joint case {event.letter_id!r} is {row.state}")
            row.other_joined = True
            if row.role == Role.OPENER:
                row.state = State.ACCEPTED
                desk.note(session, row, "joined", now)
            return "joint_case.joined", {}
        if isinstance(event, JointShareDrawn):
            if row.other_members:
                raise PoisonEvent(f"replayed: {event.from_county!r}'s share is already in")
            row.other_members = json.dumps(event.person_ids)
            desk.note_if_team_complete(session, row, now)
            return "joint_case.share_received", {"members": event.person_ids}
        if isinstance(event, JointCaseDeclined | JointCaseClosed):
            if row.state not in OPEN_STATES:
                raise PoisonEvent(f"out-of-order: joint case {event.letter_id!r} is {row.state}")
            if isinstance(event, JointCaseDeclined):
                row.state, row.decline_ground = State.DECLINED, event.ground
                desk.release_share(session, row, "declined", now)
                desk.note(session, row, "declined", now)
                return "joint_case.decline_received", {"ground": event.ground}
            row.state, row.outcome = State.CLOSED, event.outcome
            row.closed_by, row.closed_at = event.from_county, event.closed_at
            desk.release_share(session, row, "closed", now)
            desk.note(session, row, "closed", now)
            return "joint_case.close_received", {"outcome": event.outcome}
        raise PoisonEvent(f"unexpected record {type(event).__name__}")


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
