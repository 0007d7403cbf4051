"""Clue transfers (线索移送) and designations (指定管辖): checked, signed, sent, audited.

The sending county keeps no copy of the clue here: its audit entry names the transfer, the
receiving county, the mode and the allowlist version, never a field's value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.network import Network
from services.collaboration.domain.transfer_rules import TransferRules, transfer_problems
from services.collaboration.letters import NotInNetwork, seal, source_of
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store import transfer_trail
from services.contracts.transfers import ClueTransferred, TransferMode
from services.runtime import audit
from services.runtime.outbox import record_event


class TransferRefused(ValueError):
    """The transfer's content breaks its mode's allowlist; `problems` lists (field, problem)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in problems))
        self.problems = problems


@dataclass(frozen=True)
class TransferDesk:
    """Sends clues from the counties this deployment holds keys for."""

    rules: TransferRules
    keys: CountySigningKeys

    async def send(
        self,
        session: AsyncSession,
        network: Network,
        *,
        actor: str,
        from_county: str,
        to_county: str,
        mode: TransferMode,
        fields: Mapping[str, str],
        excerpt: str,
        now: datetime,
    ) -> ClueTransferred:
        """Check, sign and send one clue; audited in the sending county. Returns the record."""
        problems = transfer_problems(self.rules.rule(mode), fields=fields, excerpt=excerpt)
        if problems:
            raise TransferRefused(problems)
        for county in (from_county, to_county):
            if network.member(county) is None:
                raise NotInNetwork(f"county {county!r} is not a member of the network")
        if from_county == to_county:
            raise NotInNetwork("a county cannot transfer a clue to itself")
        key = self.keys.key_of(from_county)
        member = network.member(from_county)
        if key is None or member is None:
            raise NotInNetwork(f"no signing key for county {from_county!r} here")
        if member.public_key().public_bytes_raw() != key.public_key().public_bytes_raw():
            # Signed with a key the network does not list, it would only be dead-lettered.
            raise NotInNetwork(
                f"the network does not list this deployment's key for {from_county!r}"
            )
        record = ClueTransferred(
            county_id=to_county,
            letter_id=f"T-{uuid.uuid4().hex[:20]}",
            from_county=from_county,
            network_version=network.version,
            mode=mode,
            # The city commission has no key of its own in the network: the county that hands
            # the clue over signs, and the record names the city that designated the receiver.
            designated_by=network.city_id if mode == "designation" else "",
            allowlist_version=self.rules.version,
            fields=dict(fields),
            excerpt=excerpt,
            sent_at=now,
        )
        sealed, event_id = seal(record, key)
        record_event(session, sealed, source=source_of(from_county), event_id=event_id)
        # What the receiver's outcome records are checked against (the trail's only key).
        transfer_trail.remember(
            session,
            county_id=from_county,
            transfer_id=record.letter_id,
            direction="sent",
            other_county=to_county,
            mode=mode,
            at=now,
        )
        await audit.append(
            session,
            county_id=from_county,
            actor=actor,
            action=f"{mode}.sent",
            record_type="transfer",
            record_id=record.letter_id,
            detail={
                "to_county": to_county,
                "mode": mode,
                "allowlist_version": self.rules.version,
                "event_id": event_id,
            },
            at=now,
        )
        return sealed
