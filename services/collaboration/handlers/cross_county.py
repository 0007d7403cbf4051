"""The one way in for a record from another county: network, addressing, signature, audit.

Every handler of cross-county records (letters, transfers, transfer outcomes) starts with
`admit`: the record must be for a member county, from a member county through that county's
source, and signed by that county's key in the network in force. Anything else raises
PoisonEvent with the reason (`no-network`, `misaddressed`, `unsigned`, `bad-signature`,
`outside-allowlist`): the consumer dead-letters it and the savepoint it ran in is undone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.domain.network import Network
from services.collaboration.domain.signing import signed_bytes, verify
from services.collaboration.letters import source_of
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store.network import current_network
from services.contracts.collaboration import CrossCountyRecord
from services.runtime import audit
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


async def admit(
    session: AsyncSession,
    keys: CountySigningKeys,
    event: CrossCountyRecord,
    envelope: Envelope,
) -> Network | None:
    """The network the record verified against; None if another deployment serves its county."""
    network = await current_network(session)
    if network is None:
        raise PoisonEvent("no-network: no network file imported here; import it, then replay")
    if network.member(event.county_id) is None:
        raise PoisonEvent(f"misaddressed: {event.county_id[:64]!r} is not a member county")
    if event.county_id not in keys.counties:
        # Addressed to a member county another deployment serves (a shared broker).
        return None
    check_signed(network, event, envelope)
    return network


def check_signed(network: Network, event: CrossCountyRecord, envelope: Envelope) -> None:
    """Addressing and signature against the network in force; PoisonEvent when either fails."""
    if network.member(event.county_id) is None:
        raise PoisonEvent(f"misaddressed: {event.county_id!r} is not a member county")
    sender = network.member(event.from_county)
    if sender is None:
        raise PoisonEvent(f"misaddressed: sender {event.from_county!r} is not a member county")
    if event.from_county == event.county_id:
        raise PoisonEvent("misaddressed: a county cannot write to itself")
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
    if not verify(sender.public_key(), message, event.signature):
        raise PoisonEvent(
            f"bad-signature: not signed by {event.from_county!r}'s key in network "
            f"version {network.version}"
        )


def check_allowlist(
    *, sent_version: int, version_here: int, problems: Sequence[tuple[str, str]]
) -> None:
    """PoisonEvent (`outside-allowlist`) for another allowlist version or any field outside it."""
    if sent_version != version_here:
        raise PoisonEvent(
            f"outside-allowlist: allowlist version {sent_version} is not {version_here} in "
            "force here"
        )
    if problems:
        listed = "; ".join(f"{name}: {problem}" for name, problem in problems)
        raise PoisonEvent(f"outside-allowlist: {listed}"[:1000])


async def audit_received(
    session: AsyncSession,
    event: CrossCountyRecord,
    *,
    action: str,
    record_type: str,
    detail: Mapping[str, object],
    at: datetime,
) -> None:
    """The record's effect in the receiving county's audit chain, by the sending county."""
    await audit.append(
        session,
        county_id=event.county_id,
        actor=f"county:{event.from_county}",
        action=action,
        record_type=record_type,
        record_id=event.letter_id,
        detail=dict(detail),
        at=at,
    )
