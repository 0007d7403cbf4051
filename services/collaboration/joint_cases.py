"""Joint investigations (联合审查调查): opened by a county or the city commission, joined or
declined by the other county, closed by either county's leadership, one team from two pools.

Each county's staffing draws its own share from its own pool under its own exclusion rules
(the subject's township there); the shares cross as signed records of person ids only. Neither
county's case id nor the subject's township ever crosses: each county's steps reach its own
case file's history as a local JointCaseNoted. Closing (or a decline) releases the county's
share from workload in its staffing (AssistanceLetterClosed under the share's draw key).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.joint_case import (
    JointKind,
    JointOutcome,
    JointRules,
    JointStepRefused,
    Role,
    State,
    check_accept,
    check_close,
)
from services.collaboration.domain.network import Network
from services.collaboration.letters import NotInNetwork, seal, source_of
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store import joint_cases
from services.collaboration.store.joint_cases import JointCaseRow
from services.contracts.collaboration import (
    AssistanceLetterClosed,
    AssistanceTeamRequested,
    CrossCountyRecord,
    JointCaseAccepted,
    JointCaseClosed,
    JointCaseDeclined,
    JointCaseNoted,
    JointCaseOpened,
    JointShareDrawn,
)
from services.runtime import audit
from services.runtime.outbox import record_event

SOURCE = "xiezuo/collaboration"
NoteStep = Literal["opened", "joined", "team_drawn", "declined", "closed"]


class JointCaseRefused(ValueError):
    """The step does not fit the joint case, the network or the rules; `field` names why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


class NoSuchJointCase(JointCaseRefused):
    """The county has no side in that joint case."""


@dataclass(frozen=True)
class JointTeamView:
    """What one county sees of a joint case: its own case id and both shares of the team."""

    joint_id: str
    county_id: str
    other_county: str
    role: str
    state: str
    case_id: str | None
    own_members: list[str]
    other_members: list[str]
    kind: str | None = None
    own_share: int = 2
    other_share: int = 2
    opened_by: str | None = None
    other_joined: bool = False
    second_county: str | None = None
    decline_ground: str | None = None
    outcome: str | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None


def share_requested(row: JointCaseRow) -> bool:
    """Whether this county's staffing was asked for its share (opener: at once; else on join)."""
    return row.role == Role.OPENER or (row.role == Role.PARTNER and row.case_id is not None)


@dataclass(frozen=True)
class JointCaseDesk:
    """Joint-case steps of the counties (and the city) this deployment holds keys for."""

    keys: CountySigningKeys
    rules: JointRules

    def _send(self, session: AsyncSession, network: Network, record: CrossCountyRecord) -> None:
        key = self.keys.key_of(record.from_county)
        if key is None or network.member(record.county_id) is None:
            raise NotInNetwork(
                f"{record.from_county!r} cannot write to {record.county_id!r} from here"
            )
        if record.from_county == network.city_id:
            listed = network.city_public_key()
        else:
            member = network.member(record.from_county)
            listed = None if member is None else member.public_key()
        if listed is None or listed.public_bytes_raw() != key.public_key().public_bytes_raw():
            # Signing with a key the network does not list would only be dead-lettered there.
            raise NotInNetwork(
                f"the network does not list this deployment's key for {record.from_county!r}"
            )
        sealed, event_id = seal(record, key)
        record_event(session, sealed, source=source_of(record.from_county), event_id=event_id)

    def _request_share(self, session: AsyncSession, row: JointCaseRow, now: datetime) -> None:
        # The local request staffing already serves for letters; kind `joint`, no case crosses.
        record_event(
            session,
            AssistanceTeamRequested(
                county_id=row.county_id,
                letter_id=row.draw_key,
                kind="joint",
                subject_township_id=row.subject_township_id or "",
                team_size=row.own_share,
                accepted_at=now,
            ),
            source=SOURCE,
            occurred_at=now,
        )

    def release_share(
        self,
        session: AsyncSession,
        row: JointCaseRow,
        outcome: Literal["declined", "closed"],
        now: datetime,
    ) -> None:
        """This county's staffing stops counting the share as workload (if it was asked)."""
        if not share_requested(row):
            return
        record_event(
            session,
            AssistanceLetterClosed(
                county_id=row.county_id, letter_id=row.draw_key, outcome=outcome, closed_at=now
            ),
            source=SOURCE,
            occurred_at=now,
        )

    def note(self, session: AsyncSession, row: JointCaseRow, step: NoteStep, now: datetime) -> None:
        """The step for this county's own case file's history, when it named its case."""
        if row.case_id is None:
            return
        record_event(
            session,
            JointCaseNoted(
                county_id=row.county_id,
                case_id=row.case_id,
                joint_id=row.joint_id,
                step=step,
                partner_county=row.other_county,
                kind=row.kind,
                own_member_ids=row.members("own"),
                partner_member_ids=row.members("other"),
                outcome=row.outcome,
                ground=row.decline_ground or "",
                at=now,
            ),
            source=SOURCE,
            occurred_at=now,
        )

    def note_if_team_complete(
        self, session: AsyncSession, row: JointCaseRow, now: datetime
    ) -> None:
        """Both shares are in (each county's own draw, the other's record): into the case."""
        if row.own_members and row.other_members and row.state == State.ACCEPTED:
            self.note(session, row, "team_drawn", now)

    def _shares(self, kind: JointKind, asked: dict[str, int]) -> dict[str, int]:
        try:
            return {county: self.rules.share(kind, size) for county, size in asked.items()}
        except ValueError as refused:
            raise JointCaseRefused("shares", str(refused)) from refused

    def _check_pair(self, network: Network, first: str, second: str, kind: JointKind) -> None:
        for county, field in ((first, "county_id"), (second, "partner_county_id")):
            if network.member(county) is None:
                raise JointCaseRefused(field, f"{county!r} is not a member county")
        if first == second:
            raise JointCaseRefused("partner_county_id", "a joint case needs two counties")
        if not network.covers_joint(first, second, kind):
            raise JointCaseRefused(
                "kind", f"no agreement of the network covers {kind.value} joint cases between them"
            )

    async def open(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        county_id: str,
        partner_county: str,
        case_id: str,
        subject_township_id: str,
        kind: JointKind,
        own_share: int = 0,
        partner_share: int = 0,
        now: datetime,
    ) -> JointCaseRow:
        """County `county_id`'s leadership opens a joint case from its `case_id`."""
        self._check_pair(network, county_id, partner_county, kind)
        shares = self._shares(kind, {county_id: own_share, partner_county: partner_share})
        joint_id = f"J-{uuid.uuid4().hex[:20]}"
        row = JointCaseRow(
            county_id=county_id,
            joint_id=joint_id,
            role=Role.OPENER,
            other_county=partner_county,
            case_id=case_id,
            subject_township_id=subject_township_id,
            draw_key=f"{joint_id}-o",
            state=State.OPENED,
            opened_at=now,
            updated_at=now,
            kind=kind.value,
            own_share=shares[county_id],
            other_share=shares[partner_county],
            opened_by=county_id,
        )
        self._send(
            session,
            network,
            JointCaseOpened(
                county_id=partner_county,
                letter_id=joint_id,
                from_county=county_id,
                network_version=network.version,
                opened_at=now,
                kind=kind.value,
                shares=shares,
            ),
        )
        session.add(row)
        self._request_share(session, row, now)
        self.note(session, row, "opened", now)
        await _audit(
            session,
            row,
            actor,
            "joint_case.opened",
            now,
            {"partner_county": partner_county, "case_id": case_id, "shares": shares},
        )
        return row

    async def open_by_city(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        first: str,
        second: str,
        kind: JointKind,
        first_share: int = 0,
        second_share: int = 0,
        now: datetime,
    ) -> JointCaseRow:
        """The city commission opens a joint case between two member counties; both must join."""
        city = network.city_id
        if self.keys.key_of(city) is None or network.city_public_key() is None:
            raise NotInNetwork(
                f"the city commission {city!r} has no signing key here or in the network file"
            )
        self._check_pair(network, first, second, kind)
        shares = self._shares(kind, {first: first_share, second: second_share})
        joint_id = f"J-{uuid.uuid4().hex[:20]}"
        for county, other in ((first, second), (second, first)):
            self._send(
                session,
                network,
                JointCaseOpened(
                    county_id=county,
                    letter_id=joint_id,
                    from_county=city,
                    network_version=network.version,
                    opened_at=now,
                    kind=kind.value,
                    shares=shares,
                    partner_county=other,
                ),
            )
        # The city's own trail: which counties, what kind and shares; no case, no team.
        row = JointCaseRow(
            county_id=city,
            joint_id=joint_id,
            role=Role.CITY,
            other_county=first,
            second_county=second,
            draw_key=f"{joint_id}-c",
            state=State.OPENED,
            opened_at=now,
            updated_at=now,
            kind=kind.value,
            own_share=shares[first],
            other_share=shares[second],
            opened_by=city,
        )
        session.add(row)
        await _audit(
            session, row, actor, "joint_case.opened_by_city", now, {"counties": [first, second]}
        )
        return row

    async def _joining(self, session: AsyncSession, county_id: str, joint_id: str) -> JointCaseRow:
        row = await joint_cases.get(session, county_id, joint_id)
        if row is None:
            raise JointCaseRefused(
                "joint_id", f"county {county_id!r} was asked to join no {joint_id!r}"
            )
        try:
            check_accept(row.role, row.state)
        except JointStepRefused as refused:
            raise JointCaseRefused("joint_id", str(refused)) from refused
        return row

    async def accept(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        county_id: str,
        joint_id: str,
        case_id: str,
        subject_township_id: str,
        now: datetime,
    ) -> JointCaseRow:
        """The partner county's leadership joins, naming its own case and the township there."""
        row = await self._joining(session, county_id, joint_id)
        row.state = State.ACCEPTED
        row.case_id = case_id
        row.subject_township_id = subject_township_id
        row.updated_at = now
        session.add(row)
        self._send(
            session,
            network,
            JointCaseAccepted(
                county_id=row.other_county,
                letter_id=joint_id,
                from_county=county_id,
                network_version=network.version,
                decided_at=now,
            ),
        )
        self._request_share(session, row, now)
        self.note(session, row, "joined", now)
        self.note_if_team_complete(session, row, now)
        await _audit(
            session,
            row,
            actor,
            "joint_case.accepted",
            now,
            {"opened_by": row.opened_by or row.other_county, "case_id": case_id},
        )
        return row

    async def decline(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        county_id: str,
        joint_id: str,
        ground: str,
        now: datetime,
    ) -> JointCaseRow:
        """The partner county's leadership declines, with a ground the other county reads."""
        row = await self._joining(session, county_id, joint_id)
        row.state = State.DECLINED
        row.decline_ground = ground
        row.updated_at = now
        session.add(row)
        self._send(
            session,
            network,
            JointCaseDeclined(
                county_id=row.other_county,
                letter_id=joint_id,
                from_county=county_id,
                network_version=network.version,
                ground=ground,
                decided_at=now,
            ),
        )
        await _audit(session, row, actor, "joint_case.declined", now, {"ground": ground})
        return row

    async def close(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        county_id: str,
        joint_id: str,
        outcome: JointOutcome,
        now: datetime,
    ) -> JointCaseRow:
        """Either county's leadership closes it with an outcome; both shares are released."""
        row = await joint_cases.get(session, county_id, joint_id)
        if row is None:
            raise JointCaseRefused(
                "joint_id", f"county {county_id!r} has no joint case {joint_id!r}"
            )
        try:
            check_close(row.role, row.state)
        except JointStepRefused as refused:
            raise JointCaseRefused("joint_id", str(refused)) from refused
        row.state = State.CLOSED
        row.outcome = outcome.value
        row.closed_by = county_id
        row.closed_at = row.updated_at = now
        session.add(row)
        self._send(
            session,
            network,
            JointCaseClosed(
                county_id=row.other_county,
                letter_id=joint_id,
                from_county=county_id,
                network_version=network.version,
                outcome=outcome.value,
                closed_at=now,
            ),
        )
        self.release_share(session, row, "closed", now)
        self.note(session, row, "closed", now)
        await _audit(session, row, actor, "joint_case.closed", now, {"outcome": outcome.value})
        return row

    async def share_drawn(
        self,
        session: AsyncSession,
        network: Network,
        row: JointCaseRow,
        person_ids: list[str],
        *,
        now: datetime,
    ) -> None:
        """This county's staffing drew its share: keep it and send the person ids across."""
        row.own_members = json.dumps(person_ids)
        row.updated_at = now
        session.add(row)
        if row.state in (State.DECLINED, State.CLOSED):
            return  # drawn after the end: released with it, nothing to send
        self._send(
            session,
            network,
            JointShareDrawn(
                county_id=row.other_county,
                letter_id=row.joint_id,
                from_county=row.county_id,
                network_version=network.version,
                person_ids=person_ids,
                drawn_at=now,
            ),
        )
        self.note_if_team_complete(session, row, now)


async def _audit(
    session: AsyncSession,
    row: JointCaseRow,
    actor: str,
    action: str,
    at: datetime,
    detail: dict[str, object],
) -> None:
    await audit.append(
        session,
        county_id=row.county_id,
        actor=actor,
        action=action,
        record_type="joint_case",
        record_id=row.joint_id,
        detail={"other_county": row.other_county, "kind": row.kind, **detail},
        at=at,
    )


def view_of(row: JointCaseRow) -> JointTeamView:
    """The row as its county sees it."""
    return JointTeamView(
        joint_id=row.joint_id,
        county_id=row.county_id,
        other_county=row.other_county,
        role=row.role,
        state=row.state,
        case_id=row.case_id,
        own_members=row.members("own"),
        other_members=row.members("other"),
        kind=row.kind,
        own_share=row.own_share,
        other_share=row.other_share,
        opened_by=row.opened_by,
        other_joined=row.other_joined,
        second_county=row.second_county,
        decline_ground=row.decline_ground,
        outcome=row.outcome,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
    )


async def view(session: AsyncSession, county_id: str, joint_id: str) -> JointTeamView | None:
    """The joint case as `county_id` sees it, or None when it has no side in it."""
    row = await joint_cases.get(session, county_id, joint_id)
    return None if row is None else view_of(row)
