"""A clue transferred from another county: verified, audited, handed to this county's cases.

Verification is the letters' (addressing, source, Ed25519 signature against the network in
force) plus the transfer allowlist; a record that fails raises PoisonEvent, is dead-lettered
with its reason and changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.transfer_rules import TransferRules, transfer_problems
from services.collaboration.handlers.cross_county import admit, audit_received, check_allowlist
from services.collaboration.handlers.letters import SOURCE
from services.collaboration.letters import LetterDesk
from services.collaboration.store import transfer_trail
from services.contracts.transfers import ClueTransferred, TransferredClueArrived
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from services.runtime.outbox import record_event


class TransferRecordHandler:
    """Verifies the transfers addressed to the counties served here and passes them to cases."""

    def __init__(self, desk: LetterDesk, rules: TransferRules) -> None:
        self._desk = desk
        self._rules = rules

    async def __call__(
        self, session: AsyncSession, event: ClueTransferred, envelope: Envelope
    ) -> None:
        """Verify, then publish the clue for cases; PoisonEvent when anything fails."""
        network = await admit(session, self._desk.keys, event, envelope)
        if network is None:
            return
        expected_city = network.city_id if event.mode == "designation" else ""
        if event.designated_by != expected_city:
            raise PoisonEvent(
                f"misaddressed: a {event.mode} names designating body "
                f"{event.designated_by[:64]!r}, expected {expected_city!r}"
            )
        check_allowlist(
            sent_version=event.allowlist_version,
            version_here=self._rules.version,
            problems=transfer_problems(
                self._rules.rule(event.mode), fields=event.fields, excerpt=event.excerpt
            ),
        )
        now = datetime.now(UTC)
        if await transfer_trail.side(session, event.county_id, event.letter_id, "received"):
            raise PoisonEvent(f"replayed: transfer {event.letter_id!r} was already received")
        # The clue's steps in this county's cases are reported back to the sender by this row.
        transfer_trail.remember(
            session,
            county_id=event.county_id,
            transfer_id=event.letter_id,
            direction="received",
            other_county=event.from_county,
            mode=event.mode,
            at=now,
        )
        record_event(
            session,
            TransferredClueArrived(
                county_id=event.county_id,
                zone_id="*",
                clue_id=event.letter_id,
                from_county=event.from_county,
                mode=event.mode,
                designated_by=event.designated_by,
                fields=event.fields,
                excerpt=event.excerpt,
                sent_at=event.sent_at,
            ),
            source=SOURCE,
        )
        await audit_received(
            session,
            event,
            action=f"{event.mode}.received",
            record_type="transfer",
            detail={
                "from_county": event.from_county,
                "designated_by": event.designated_by,
                "allowlist_version": event.allowlist_version,
                "fields": json.dumps(sorted(event.fields)),
            },
            at=now,
        )
