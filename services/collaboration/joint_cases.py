"""Joint investigations (联合审查调查): opened by one county, joined by another, one team.

Each county's staffing draws its own share from its own pool under its own exclusion rules
(the subject's township there); the shares cross as signed records of person ids only. Neither
county's case id nor the subject's township ever crosses.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.network import Network
from services.collaboration.letters import NotInNetwork, seal, source_of
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store import joint_cases
from services.collaboration.store.joint_cases import JointCaseRow
from services.contracts.collaboration import (
    AssistanceTeamRequested,
    CrossCountyRecord,
    JointCaseAccepted,
    JointCaseOpened,
    JointShareDrawn,
)
from services.runtime import audit
from services.runtime.outbox import record_event

SOURCE = "xiezuo/collaboration"


class JointCaseRefused(ValueError):
    """The step does not fit the joint case's state or the caller's county."""


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


@dataclass(frozen=True)
class JointCaseDesk:
    """Joint-case steps of the counties this deployment holds keys for."""

    keys: CountySigningKeys
    # Each county's share; the same for both until the rule file names one per kind.
    share_size: int = 2

    def _send(self, session: AsyncSession, network: Network, record: CrossCountyRecord) -> None:
        key = self.keys.key_of(record.from_county)
        member = network.member(record.from_county)
        if key is None or member is None or network.member(record.county_id) is None:
            raise NotInNetwork(
                f"{record.from_county!r} cannot write to {record.county_id!r} from here"
            )
        if member.public_key().public_bytes_raw() != key.public_key().public_bytes_raw():
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
                team_size=self.share_size,
                accepted_at=now,
            ),
            source=SOURCE,
            occurred_at=now,
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
        now: datetime,
    ) -> JointCaseRow:
        """County `county_id`'s leadership opens a joint case from its `case_id`."""
        if county_id == partner_county:
            raise JointCaseRefused("a county cannot open a joint case with itself")
        joint_id = f"J-{uuid.uuid4().hex[:20]}"
        row = JointCaseRow(
            county_id=county_id,
            joint_id=joint_id,
            role="opener",
            other_county=partner_county,
            case_id=case_id,
            subject_township_id=subject_township_id,
            draw_key=f"{joint_id}-o",
            state="opened",
            opened_at=now,
            updated_at=now,
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
            ),
        )
        session.add(row)
        self._request_share(session, row, now)
        await audit.append(
            session,
            county_id=county_id,
            actor=actor,
            action="joint_case.opened",
            record_type="joint_case",
            record_id=joint_id,
            detail={"partner_county": partner_county, "case_id": case_id},
            at=now,
        )
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
        row = await joint_cases.get(session, county_id, joint_id)
        if row is None or row.role != "partner":
            raise JointCaseRefused(f"county {county_id!r} was asked to join no {joint_id!r}")
        if row.state != "received":
            raise JointCaseRefused(f"joint case {joint_id!r} is already {row.state}")
        row.state = "accepted"
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
        await audit.append(
            session,
            county_id=county_id,
            actor=actor,
            action="joint_case.accepted",
            record_type="joint_case",
            record_id=joint_id,
            detail={"opened_by": row.other_county, "case_id": case_id},
            at=now,
        )
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


async def view(session: AsyncSession, county_id: str, joint_id: str) -> JointTeamView | None:
    """The joint case as `county_id` sees it, or None when it has no side in it."""
    row = await joint_cases.get(session, county_id, joint_id)
    if row is None:
        return None
    return JointTeamView(
        joint_id=row.joint_id,
        county_id=row.county_id,
        other_county=row.other_county,
        role=row.role,
        state=row.state,
        case_id=row.case_id,
        own_members=row.members("own"),
        other_members=row.members("other"),
    )
