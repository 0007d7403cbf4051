"""Records from other counties: verified against the network before anything changes.

An unsigned, badly signed, replayed or wrongly addressed record, or one that carries a field
outside its kind's allowlist, raises PoisonEvent (handlers/cross_county.py is the shared way
in): the consumer dead-letters it with the reason (`x-dead-letter-error`) and the savepoint it
ran in is undone, so it changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.letter import (
    Direction,
    LetterState,
    Step,
    StepRefused,
    next_state,
)
from services.collaboration.domain.letter_kinds import LetterKind, content_problems
from services.collaboration.domain.network import Network
from services.collaboration.handlers.cross_county import (
    admit,
    audit_received,
    check_allowlist,
    check_signed,
)
from services.collaboration.letters import LetterDesk
from services.collaboration.metrics import LetterMetrics
from services.collaboration.store import letters
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import (
    AssistanceAnswered,
    CrossCountyRecord,
    LetterAccepted,
    LetterAnswered,
    LetterDeclined,
    LetterSent,
)
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from services.runtime.outbox import record_event

SOURCE = "xiezuo/collaboration"


class LetterRecordHandler:
    """Verifies and applies the letter records addressed to the counties served here."""

    def __init__(self, desk: LetterDesk, metrics: LetterMetrics | None = None) -> None:
        self._desk = desk
        self._metrics = metrics

    async def __call__(
        self, session: AsyncSession, event: CrossCountyRecord, envelope: Envelope
    ) -> None:
        """Verify, then apply; PoisonEvent (dead letter, nothing changed) when it fails."""
        network = await admit(session, self._desk.keys, event, envelope)
        if network is None:
            return
        now = datetime.now(UTC)
        if isinstance(event, LetterSent):
            await self._received(session, network, event, now)
        elif isinstance(event, LetterAccepted | LetterDeclined | LetterAnswered):
            await self._reply(session, event, now)

    def verify(self, network: Network, event: CrossCountyRecord, envelope: Envelope) -> None:
        """Addressing and signature against the network in force (handlers/cross_county.py)."""
        check_signed(network, event, envelope)

    async def _received(
        self, session: AsyncSession, network: Network, event: LetterSent, now: datetime
    ) -> None:
        kind = LetterKind(event.kind)
        if not network.covers(event.from_county, event.county_id, kind):
            raise PoisonEvent(f"misaddressed: no agreement covers {kind.value} between the two")
        kinds = self._desk.kinds
        check_allowlist(
            sent_version=event.allowlist_version,
            version_here=kinds.version,
            problems=content_problems(
                kinds.rule(kind),
                question=event.question,
                fields=event.fields,
                excerpt=event.excerpt,
            ),
        )
        if await letters.get(session, event.county_id, event.letter_id) is not None:
            raise PoisonEvent(f"replayed: letter {event.letter_id!r} was already received")
        row = LetterRow(
            county_id=event.county_id,
            letter_id=event.letter_id,
            direction=Direction.INBOUND,
            counterpart_county=event.from_county,
            kind=kind,
            allowlist_version=event.allowlist_version,
            network_version=event.network_version,
            question=event.question,
            fields_json=json.dumps(event.fields, ensure_ascii=False, sort_keys=True),
            excerpt=event.excerpt,
            due_date=event.due_date,
            state=LetterState.RECEIVED,
            requested_at=event.approved_at,
            approved_at=event.approved_at,
            updated_at=now,
        )
        session.add(row)
        await _audit(session, event, row, "letter.received", now)
        # Counted inside the batch's transaction: a batch that fails to commit is retried and
        # counted again (rare; the counter may run ahead, never behind).
        if self._metrics is not None:
            self._metrics.step(
                from_county=event.from_county, to_county=event.county_id, kind=kind, step="received"
            )

    async def _reply(
        self,
        session: AsyncSession,
        event: LetterAccepted | LetterDeclined | LetterAnswered,
        now: datetime,
    ) -> None:
        row = await letters.get(session, event.county_id, event.letter_id)
        if (
            row is None
            or row.direction != Direction.OUTBOUND
            or row.counterpart_county != event.from_county
        ):
            raise PoisonEvent(
                f"misaddressed: {event.county_id!r} sent no letter {event.letter_id[:64]!r} "
                f"to {event.from_county!r}"
            )
        step = (
            Step.ACCEPT
            if isinstance(event, LetterAccepted)
            else Step.DECLINE
            if isinstance(event, LetterDeclined)
            else Step.ANSWER
        )
        try:
            row.state = next_state(Direction.OUTBOUND, LetterState(row.state), step)
        except StepRefused as refused:
            raise PoisonEvent(f"out-of-order: {refused}") from refused
        row.updated_at = now
        if isinstance(event, LetterAccepted | LetterDeclined):
            row.decided_at = event.decided_at
            row.decided_by = event.from_county
            if isinstance(event, LetterDeclined):
                row.decline_ground = event.ground
        else:
            row.answered_at, row.answered_by = event.answered_at, event.from_county
            row.findings = event.findings
            row.attachments_json = json.dumps(
                [a.model_dump() for a in event.attachments], ensure_ascii=False
            )
            # For the case's history in this county (cases' consumption is the next step).
            record_event(
                session,
                AssistanceAnswered(
                    county_id=row.county_id,
                    zone_id=row.zone_id or "*",
                    case_id=row.case_id or "",
                    letter_id=row.letter_id,
                    answered_by_county=event.from_county,
                    kind=row.kind,
                    findings=event.findings,
                    attachments=len(event.attachments),
                    answered_at=event.answered_at,
                ),
                source=SOURCE,
            )
        session.add(row)
        await _audit(session, event, row, f"letter.{step.value}_received", now)
        if self._metrics is None:
            return
        if isinstance(event, LetterAnswered):
            self._metrics.answered(
                from_county=row.county_id,
                to_county=event.from_county,
                kind=row.kind,
                approved_at=row.approved_at,
                answered_at=event.answered_at,
            )
        else:
            self._metrics.step(
                from_county=row.county_id,
                to_county=event.from_county,
                kind=row.kind,
                step=f"{step.value}_received",
            )


async def _audit(
    session: AsyncSession, event: CrossCountyRecord, row: LetterRow, action: str, at: datetime
) -> None:
    await audit_received(
        session,
        event,
        action=action,
        record_type="letter",
        detail={"counterpart": event.from_county, "kind": row.kind},
        at=at,
    )
