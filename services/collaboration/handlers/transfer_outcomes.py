"""The sending county's read-only trail of a transferred clue's outcome (stage, decision).

Receiving side: each workflow step cases takes on a clue that arrived by transfer goes back to
the sending county as a signed `TransferOutcome` carrying the transfer id, the stage, the kind
of decision and when; nothing else (no names, no sanctions, no reasoning).
Sending side: the record is verified like every cross-county record (addressing, source,
signature, replay) and against the transfers this county sent; then it joins the trail.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.handlers.cross_county import admit, audit_received
from services.collaboration.letters import LetterDesk, seal, source_of
from services.collaboration.store import transfer_trail
from services.collaboration.store.network import current_network
from services.collaboration.store.transfer_trail import TransferStepRow
from services.contracts.cases import CaseStepRecorded
from services.contracts.transfers import TransferOutcome
from services.runtime import audit
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from services.runtime.outbox import record_event

# A decision kind is a rule-book code ("warning", "close", …); anything else stays home.
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Where cases puts the kind of decision a step took: disposal way, outcome, decision.
_DECISION_KEYS = ("decision", "way", "outcome")


def decision_kind(step: CaseStepRecorded) -> str:
    """The kind of decision the step took, or "" (never its detail)."""
    for key in _DECISION_KEYS:
        value = step.detail.get(key)
        if isinstance(value, str) and _CODE.match(value):
            return value
    return ""


class OutcomeReporter:
    """Sends the steps of transferred clues back to the counties that sent them."""

    def __init__(self, desk: LetterDesk) -> None:
        self._desk = desk

    async def __call__(
        self, session: AsyncSession, event: CaseStepRecorded, envelope: Envelope
    ) -> None:
        """Report the step if the clue came here by transfer; otherwise nothing."""
        key = self._desk.keys.key_of(event.county_id)
        if key is None:
            return  # a county another deployment serves
        received = await transfer_trail.side(session, event.county_id, event.case_id, "received")
        if received is None:
            return  # this county's own clue: nothing crosses
        network = await current_network(session)
        if network is None:
            raise PoisonEvent("no-network: no network file imported here; import it, then replay")
        if not _CODE.match(event.to_stage):
            raise PoisonEvent(f"bad-stage: {event.to_stage[:40]!r} is not a stage code")
        record = TransferOutcome(
            county_id=received.other_county,
            letter_id=event.case_id,
            from_county=event.county_id,
            network_version=network.version,
            stage=event.to_stage,
            decision=decision_kind(event),
            at=event.occurred_at,
        )
        sealed, event_id = seal(record, key)
        record_event(session, sealed, source=source_of(event.county_id), event_id=event_id)
        await audit.append(
            session,
            county_id=event.county_id,
            actor="system:collaboration",
            action="transfer.outcome_sent",
            record_type="transfer",
            record_id=event.case_id,
            detail={
                "to_county": received.other_county,
                "stage": sealed.stage,
                "decision": sealed.decision,
                "event_id": event_id,
            },
            at=datetime.now(UTC),
        )


class OutcomeReceiver:
    """Verifies outcome records addressed to the counties served here and keeps the trail."""

    def __init__(self, desk: LetterDesk) -> None:
        self._desk = desk

    async def __call__(
        self, session: AsyncSession, event: TransferOutcome, envelope: Envelope
    ) -> None:
        """Verify, then append to the trail; PoisonEvent (dead letter) when anything fails."""
        if await admit(session, self._desk.keys, event, envelope) is None:
            return
        sent = await transfer_trail.side(session, event.county_id, event.letter_id, "sent")
        if sent is None or sent.other_county != event.from_county:
            raise PoisonEvent(
                f"misaddressed: {event.county_id!r} sent no transfer "
                f"{event.letter_id[:64]!r} to {event.from_county!r}"
            )
        now = datetime.now(UTC)
        session.add(
            TransferStepRow(
                county_id=event.county_id,
                transfer_id=event.letter_id,
                stage=event.stage,
                decision=event.decision,
                at=event.at,
                received_at=now,
            )
        )
        await audit_received(
            session,
            event,
            action="transfer.outcome_received",
            record_type="transfer",
            detail={"stage": event.stage, "decision": event.decision},
            at=now,
        )
