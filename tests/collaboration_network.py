"""Shared set-up of the collaboration tests: a two-county network file with fresh keys, two
counties running over the real broker, and the TransferService served with test tokens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xiezuo.collaboration.v1 import transfers_pb2_grpc as pb_grpc

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.handlers.transferred_clue import TransferredClueHandler
from services.collaboration.api.transfers import TransferServicer
from services.collaboration.domain.letter_kinds import parse_letter_kinds
from services.collaboration.domain.network import parse_network
from services.collaboration.domain.transfer_rules import TransferRules, parse_transfer_rules
from services.collaboration.letters import LetterDesk
from services.collaboration.settings import (
    DEFAULT_LETTER_KINDS_FILE,
    DEFAULT_TRANSFER_RULES_FILE,
)
from services.collaboration.signing_keys import CountySigningKeys, public_pem
from services.collaboration.store.network import import_network
from services.collaboration.transfers import TransferDesk
from services.contracts.collaboration import ANSWERS_TOPIC, LETTERS_TOPIC
from services.contracts.transfers import TransferredClueArrived
from services.runtime.db import Database
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.inbox import EventConsumer
from services.runtime.outbox import OutboxRelay
from services.runtime.tokens import TokenIssuer, TokenVerifier
from tests.conftest import MakeDatabase
from tests.integration.helpers import create_topics, running_broker, started_producer, unique


def network_yaml(
    keys: dict[str, Ed25519PrivateKey], *, version: int = 1, city: str = "city-lz"
) -> str:
    """Members `keys` (county → private key), all agreeing on every kind of help."""
    counties = "".join(
        f"  - county_id: {county}\n    name: 县{index}\n    public_key: |\n"
        + "".join(f"      {line}\n" for line in public_pem(key).strip().splitlines())
        for index, (county, key) in enumerate(keys.items())
    )
    members = ", ".join(keys)
    return (
        f"network: lz-network\nversion: {version}\n"
        f"city_commission: {{id: {city}, name: 某市纪委监委}}\n"
        f"counties:\n{counties}"
        f"agreements:\n  - counties: [{members}]\n"
        "    kinds: [verify_fact, witness_statement, registry_check, locate_person, other]\n"
    )


@dataclass
class TwoCounties:
    """Counties A and B of one network: one collaboration and one cases database (both
    counties' rows, as in the tests' single process), the desks, and the two consumers."""

    a: str
    b: str
    keys: dict[str, Ed25519PrivateKey]
    collaboration: Database
    cases: Database
    rules: TransferRules
    letter_desk: LetterDesk
    desk: TransferDesk
    bootstrap: str
    collaboration_consumer: EventConsumer
    cases_consumer: EventConsumer

    @property
    def dead_letter_topic(self) -> str:
        """Where collaboration parks the records it refuses."""
        return self.collaboration_consumer.dead_letter_topic


@asynccontextmanager
async def two_counties(
    bootstrap: str,
    make_database: MakeDatabase,
    *,
    city: str,
    wire: Callable[[TwoCounties], None],
    topics: Sequence[str] = (),
    relay_cases: bool = False,
) -> AsyncIterator[TwoCounties]:
    """Counties A and B in a network with city `city`, running on the broker at `bootstrap`.

    Cases registers transferred clues; `wire` registers what collaboration's consumer handles.
    Collaboration's outbox is relayed, and cases' too when `relay_cases` (its workflow events).
    `topics` are created besides the letters, answers and dead-letter topics.
    """
    a, b = unique("county-a"), unique("county-b")
    keys = {a: Ed25519PrivateKey.generate(), b: Ed25519PrivateKey.generate()}
    collaboration = await make_database("collaboration")
    cases = await make_database("cases")
    parsed, sha = parse_network(network_yaml(keys, city=city))
    async with collaboration.transaction() as session:
        await import_network(session, parsed, sha256=sha, actor="test")
    rules = parse_transfer_rules(DEFAULT_TRANSFER_RULES_FILE.read_text(encoding="utf-8"))
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    async with started_producer(bootstrap) as producer:
        counties = TwoCounties(
            a,
            b,
            keys,
            collaboration,
            cases,
            rules,
            LetterDesk(kinds=kinds, keys=CountySigningKeys(keys)),
            TransferDesk(rules=rules, keys=CountySigningKeys(keys)),
            bootstrap,
            EventConsumer(
                service=unique("collaboration"),
                database=collaboration,
                dead_letter_producer=producer,
                retry_backoff_seconds=0.01,
                batch_size=10,
            ),
            EventConsumer(
                service=unique("cases"),
                database=cases,
                dead_letter_producer=producer,
                retry_backoff_seconds=0.01,
                batch_size=10,
            ),
        )
        wire(counties)
        counties.cases_consumer.on(
            TransferredClueArrived, TransferredClueHandler(ClueRegisteredHandler([DEFAULT_RULES]))
        )
        await create_topics(
            bootstrap,
            LETTERS_TOPIC,
            ANSWERS_TOPIC,
            *topics,
            counties.collaboration_consumer.dead_letter_topic,
            counties.cases_consumer.dead_letter_topic,
            partitions=3,
        )
        relays = [OutboxRelay(collaboration, producer, idle_poll_seconds=0.2)]
        if relay_cases:
            relays.append(OutboxRelay(cases, producer, idle_poll_seconds=0.2))
        tasks = [asyncio.create_task(relay.run()) for relay in relays]
        try:
            async with (
                running_broker(bootstrap, counties.collaboration_consumer),
                running_broker(bootstrap, counties.cases_consumer),
            ):
                yield counties
        finally:
            for relay in relays:
                await relay.stop()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@asynccontextmanager
async def serving_transfers(servicer: TransferServicer) -> AsyncIterator[tuple[Any, TokenIssuer]]:
    """The TransferService on a free port: its stub, and an issuer of tokens it accepts."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.collaboration.v1.TransferService"],
        register=lambda server: pb_grpc.add_TransferServiceServicer_to_server(servicer, server),
        verifier=TokenVerifier([public], issuer="test", audience="xiezuo"),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield (
            pb_grpc.TransferServiceStub(channel),
            TokenIssuer(private, issuer="test", audience="xiezuo"),
        )
    finally:
        await channel.close()
        await endpoint.stop(grace=0)
