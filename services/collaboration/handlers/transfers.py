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
from services.collaboration.handlers.letters import SOURCE, LetterRecordHandler
from services.collaboration.letters import LetterDesk
from services.collaboration.store import transfer_trail
from services.collaboration.store.network import current_network
from services.contracts.transfers import ClueTransferred, TransferredClueArrived
from services.runtime import audit
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent
from services.runtime.outbox import record_event


class TransferRecordHandler:
    """Verifies the transfers addressed to the counties served here and passes them to cases."""

    def __init__(self, desk: LetterDesk, rules: TransferRules) -> None:
        self._desk = desk
        self._rules = rules
        self._letters = LetterRecordHandler(desk)

    async def __call__(
        self, session: AsyncSession, event: ClueTransferred, envelope: Envelope
    ) -> None:
        """Verify, then publish the clue for cases; PoisonEvent when anything fails."""
        network = await current_network(session)
        if network is None:
            raise PoisonEvent("no-network: no network file imported here; import it, then replay")
        if network.member(event.county_id) is None:
            raise PoisonEvent(f"misaddressed: {event.county_id[:64]!r} is not a member county")
        if event.county_id not in self._desk.keys.counties:
            return  # another deployment's county on a shared broker
        self._letters.verify(network, event, envelope)
        expected_city = network.city_id if event.mode == "designation" else ""
        if event.designated_by != expected_city:
            raise PoisonEvent(
                f"misaddressed: a {event.mode} names designating body "
                f"{event.designated_by[:64]!r}, expected {expected_city!r}"
            )
        if event.allowlist_version != self._rules.version:
            raise PoisonEvent(
                f"outside-allowlist: allowlist version {event.allowlist_version} is not "
                f"{self._rules.version} in force here"
            )
        problems = transfer_problems(
            self._rules.rule(event.mode), fields=event.fields, excerpt=event.excerpt
        )
        if problems:
            listed = "; ".join(f"{name}: {problem}" for name, problem in problems)
            raise PoisonEvent(f"outside-allowlist: {listed}"[:1000])
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
        await audit.append(
            session,
            county_id=event.county_id,
            actor=f"county:{event.from_county}",
            action=f"{event.mode}.received",
            record_type="transfer",
            record_id=event.letter_id,
            detail={
                "from_county": event.from_county,
                "designated_by": event.designated_by,
                "allowlist_version": event.allowlist_version,
                "fields": json.dumps(sorted(event.fields)),
            },
            at=now,
        )
