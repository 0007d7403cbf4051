"""The IntakeService over real gRPC (SQLite and PostgreSQL), shared by intake's API tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp
from sqlmodel import select
from xiezuo.intake.v1 import intake_pb2_grpc

from services.intake.api.parts import IntakeParts, wall_clock
from services.intake.api.servicer import IntakeServicer
from services.intake.domain.receipt import ReceiptKeys
from services.intake.domain.rulebook import RuleBook
from services.intake.store.acceptance import AcceptanceDesk
from services.intake.store.duplicates import DuplicateDesk
from services.intake.store.exchange import ReporterChannel
from services.intake.store.receipts import ReceiptDesk
from services.intake.store.report_reader import ReportReader
from services.intake.store.reports import ReportRegistry
from services.intake.store.result_feedback import ResultDesk
from services.intake.store.reveals import RevealDesk
from services.intake.store.rule_files import load_rule_book
from services.intake.store.townships import TownshipRegistry
from services.intake.store.vault import Vault
from services.runtime.db import Database, as_utc
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from tests.conftest import MakeDatabase

ISSUER, AUDIENCE = "test", "xiezuo"
WINDOW_DAYS = 400
VAULT = Vault(bytes(range(32)))
RECEIPT_KEYS = ReceiptKeys(bytes(range(32, 64)))


@dataclass
class Api:
    """A stub of the running service, a token issuer for its callers and its database."""

    stub: Any
    issuer: TokenIssuer
    db: Database

    def as_(self, *roles: str, county_id: str = "c1", zone_id: str = "z1") -> Any:
        """Call metadata for an officer of the given county and zone."""
        token = self.issuer.issue(
            Principal(
                subject="officer", roles=frozenset(roles), county_id=county_id, zone_ids=(zone_id,)
            )
        )
        return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def serve(
    database: Database, book: RuleBook, *, clock: Callable[[], datetime] = wall_clock
) -> AsyncIterator[Api]:
    """Run the IntakeService on `database` under `book` on a free local port."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    parts = IntakeParts(
        rule_book=book,
        registry=ReportRegistry(database, VAULT, book, RECEIPT_KEYS),
        reports=ReportReader(database),
        receipts=ReceiptDesk(database, book, RECEIPT_KEYS),
        channel=ReporterChannel(database, VAULT),
        reveals=RevealDesk(database, VAULT),
        acceptance=AcceptanceDesk(database, VAULT),
        duplicates=DuplicateDesk(database, book),
        townships=TownshipRegistry(database),
        back_entry_days=WINDOW_DAYS,
        results=ResultDesk(database, VAULT),
        clock=clock,
    )
    servicer = IntakeServicer(parts)
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.intake.v1.IntakeService"],
        register=lambda server: intake_pb2_grpc.add_IntakeServiceServicer_to_server(
            servicer, server
        ),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Api(
            intake_pb2_grpc.IntakeServiceStub(channel),
            TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE),
            database,
        )
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


@pytest.fixture
async def api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    """The service under the shipped rule book."""
    async with serve(await make_database("intake"), load_rule_book()) as running:
        yield running


def ago(days: int) -> datetime:
    """A moment `days` ago, in whole seconds."""
    # Whole seconds: what a Timestamp and every database column hold exactly.
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)


def stamp(moment: datetime) -> Timestamp:
    """`moment` as a protobuf Timestamp."""
    stamped = Timestamp()
    stamped.FromDatetime(moment)
    return stamped


async def events(db: Database, event_type: str) -> list[tuple[datetime, dict[str, Any]]]:
    """Each outbox event of `event_type`: when it occurred and its payload."""
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.occurred_at, OutboxMessage.payload).where(
                OutboxMessage.event_type == event_type
            )
        )
        return [(as_utc(at), json.loads(payload)) for at, payload in rows.all()]
