"""Command handlers for assistance letters: load, decide with the domain, save, audit, record.

Each runs inside the caller's unit of work (one transaction); signed records for the other
county go through the outbox with the change that implies them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.assistance_teams import close_team, request_team
from services.collaboration.domain.letter import Direction, LetterState, Step, next_state
from services.collaboration.domain.letter_kinds import LetterKind, LetterKinds
from services.collaboration.domain.network import Network
from services.collaboration.domain.signing import sign, signed_bytes
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store import letters
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import (
    Attachment,
    CrossCountyRecord,
    LetterAccepted,
    LetterAnswered,
    LetterDeclined,
    LetterSent,
)
from services.runtime import audit
from services.runtime.outbox import record_event
from services.working_calendar import NATIONAL_CALENDAR, WorkingCalendar, parse_calendar

R = TypeVar("R", bound=CrossCountyRecord)


def source_of(county_id: str) -> str:
    """The CloudEvents source of a county's collaboration records (checked by receivers)."""
    return f"xiezuo/collaboration/{county_id}"


class NotInNetwork(Exception):
    """The step needs something the network in force does not provide; the reason says what."""


def seal(record: R, key: Any) -> tuple[R, str]:
    """The record signed by its county's key, and the event id the signature covers."""
    event_id = str(uuid.uuid4())
    payload = json.loads(record.model_dump_json())
    message = signed_bytes(
        event_id=event_id,
        event_type=record.event_type,
        source=source_of(record.from_county),
        subject=record.subject_id(),
        payload=payload,
    )
    return record.model_copy(update={"signature": sign(key, message)}), event_id


@dataclass
class LetterDesk:
    """The letter steps of the counties this deployment speaks for."""

    kinds: LetterKinds
    keys: CountySigningKeys
    # (network version, county) → its working-day calendar, parsed once.
    _calendars: dict[tuple[int, str], WorkingCalendar] = field(default_factory=dict)

    def calendar(self, network: Network, county_id: str) -> WorkingCalendar:
        """The county's calendar as the network lists it (national when none is listed)."""
        cached = self._calendars.get((network.version, county_id))
        if cached is None:
            member = network.member(county_id)
            text = member.calendar_text if member else None
            cached = NATIONAL_CALENDAR if text is None else parse_calendar(text)
            self._calendars[(network.version, county_id)] = cached
        return cached

    def due_date(self, network: Network, *, target: str, kind: LetterKind, on: date) -> date:
        """Working days of the kind's rule, counted on the asked county's calendar."""
        days = self.kinds.rule(kind).working_days
        return self.calendar(network, target).add_working_days(on, days)

    def check_route(
        self, network: Network, *, from_county: str, to_county: str, kind: LetterKind
    ) -> None:
        """The network must list both counties and an agreement covering this kind."""
        if network.member(from_county) is None:
            raise NotInNetwork(f"county {from_county!r} is not a member of the network")
        if network.member(to_county) is None:
            raise NotInNetwork(f"county {to_county!r} is not a member of the network")
        if not network.covers(from_county, to_county, kind):
            raise NotInNetwork(
                f"no agreement of the network covers {kind.value} from {from_county} to {to_county}"
            )

    async def request(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        county_id: str,
        zone_id: str,
        case_id: str,
        target: str,
        kind: LetterKind,
        question: str,
        fields: Mapping[str, str],
        excerpt: str,
        now: datetime,
        recorded_at: datetime | None = None,
    ) -> LetterRow:
        """Draft a letter from a case; it waits for the county leadership's approval.

        `now` is when the step took effect; `recorded_at` the real entry time of a back-entry
        (补录), which the row's `updated_at` and the audit entry keep.
        """
        self.check_route(network, from_county=county_id, to_county=target, kind=kind)
        row = LetterRow(
            county_id=county_id,
            letter_id=f"L-{uuid.uuid4().hex[:20]}",
            direction=Direction.OUTBOUND,
            counterpart_county=target,
            case_id=case_id,
            zone_id=zone_id,
            kind=kind,
            allowlist_version=self.kinds.version,
            network_version=network.version,
            question=question,
            fields_json=json.dumps(dict(fields), ensure_ascii=False, sort_keys=True),
            excerpt=excerpt,
            due_date=self.due_date(network, target=target, kind=kind, on=now.date()),
            state=LetterState.AWAITING_APPROVAL,
            requested_by=actor,
            requested_at=now,
            updated_at=recorded_at or now,
        )
        session.add(row)
        await self._audit(
            session, row, actor, "letter.requested", now, {"case_id": case_id}, recorded_at
        )
        return row

    async def approve(
        self,
        session: AsyncSession,
        network: Network,
        row: LetterRow,
        *,
        actor: str,
        now: datetime,
        recorded_at: datetime | None = None,
    ) -> LetterRow:
        """Leadership approves: the letter is signed and sent to the asked county."""
        state = next_state(Direction(row.direction), LetterState(row.state), Step.APPROVE)
        kind = LetterKind(row.kind)
        self.check_route(
            network, from_county=row.county_id, to_county=row.counterpart_county, kind=kind
        )
        record = LetterSent(
            county_id=row.counterpart_county,
            letter_id=row.letter_id,
            from_county=row.county_id,
            network_version=network.version,
            kind=kind.value,
            allowlist_version=row.allowlist_version,
            question=row.question,
            fields=letters.fields_of(row),
            excerpt=row.excerpt,
            due_date=row.due_date,
            approved_at=now,
        )
        event_id = self._send(session, network, record)
        row.state, row.approved_by, row.approved_at = state, actor, now
        row.updated_at = recorded_at or now
        session.add(row)
        await self._audit(
            session, row, actor, "letter.sent", now, {"event_id": event_id}, recorded_at
        )
        return row

    async def decide(
        self,
        session: AsyncSession,
        network: Network,
        row: LetterRow,
        *,
        actor: str,
        accept: bool,
        ground: str,
        now: datetime,
        subject_township_id: str = "",
        recorded_at: datetime | None = None,
    ) -> LetterRow:
        """The asked county's leadership accepts, or declines with a ground.

        An accepted letter also asks this county's staffing for a team from its own pool,
        never from `subject_township_id` (the subject's township here, when named).
        """
        step = Step.ACCEPT if accept else Step.DECLINE
        if row.direction != Direction.INBOUND:
            raise NotInNetwork("only the asked county accepts or declines a letter")
        state = next_state(Direction.INBOUND, LetterState(row.state), step)
        common = {
            "county_id": row.counterpart_county,
            "letter_id": row.letter_id,
            "from_county": row.county_id,
            "network_version": network.version,
            "decided_at": now,
        }
        record: CrossCountyRecord = (
            LetterAccepted(**common) if accept else LetterDeclined(**common, ground=ground)
        )
        event_id = self._send(session, network, record)
        row.state, row.decided_by, row.decided_at = state, actor, now
        row.updated_at = recorded_at or now
        row.decline_ground = None if accept else ground
        session.add(row)
        detail: dict[str, Any] = {"event_id": event_id}
        if accept:
            team = request_team(
                session,
                row,
                self.kinds.rule(LetterKind(row.kind)),
                subject_township_id=subject_township_id,
                now=now,
            )
            detail["team_size"] = team.team_size
            detail["subject_township_id"] = subject_township_id
        await self._audit(session, row, actor, f"letter.{step.value}ed", now, detail, recorded_at)
        return row

    async def answer(
        self,
        session: AsyncSession,
        network: Network,
        row: LetterRow,
        *,
        actor: str,
        findings: str,
        attachments: Sequence[Attachment],
        now: datetime,
        recorded_at: datetime | None = None,
    ) -> LetterRow:
        """The asked county's findings go back, signed."""
        state = next_state(Direction(row.direction), LetterState(row.state), Step.ANSWER)
        record = LetterAnswered(
            county_id=row.counterpart_county,
            letter_id=row.letter_id,
            from_county=row.county_id,
            network_version=network.version,
            findings=findings,
            attachments=list(attachments),
            answered_at=now,
        )
        event_id = self._send(session, network, record)
        row.state, row.answered_by, row.answered_at = state, actor, now
        row.updated_at = recorded_at or now
        row.findings = findings
        row.attachments_json = json.dumps([a.model_dump() for a in attachments], ensure_ascii=False)
        session.add(row)
        close_team(session, row, now=now)
        await self._audit(
            session, row, actor, "letter.answered", now, {"event_id": event_id}, recorded_at
        )
        return row

    def _send(self, session: AsyncSession, network: Network, record: CrossCountyRecord) -> str:
        key = self.keys.key_of(record.from_county)
        if key is None:
            raise NotInNetwork(f"no signing key for county {record.from_county!r} here")
        member = network.member(record.from_county)
        if (
            member is None
            or member.public_key().public_bytes_raw() != key.public_key().public_bytes_raw()
        ):
            # Signing with a key the network does not list would only be dead-lettered there.
            raise NotInNetwork(
                f"the network does not list this deployment's key for {record.from_county!r}"
            )
        sealed, event_id = seal(record, key)
        record_event(session, sealed, source=source_of(record.from_county), event_id=event_id)
        return event_id

    @staticmethod
    async def _audit(
        session: AsyncSession,
        row: LetterRow,
        actor: str,
        action: str,
        at: datetime,
        detail: Mapping[str, Any] | None = None,
        recorded_at: datetime | None = None,
    ) -> None:
        # The audit log runs on real time; a back-entry names the moment it took effect.
        dated = {"effective_at": at.isoformat()} if recorded_at is not None else {}
        await audit.append(
            session,
            county_id=row.county_id,
            actor=actor,
            action=action,
            record_type="letter",
            record_id=row.letter_id,
            detail={
                "counterpart": row.counterpart_county,
                "kind": row.kind,
                **(detail or {}),
                **dated,
            },
            at=recorded_at or at,
        )


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
