"""The staffing gRPC services served over real gRPC for tests, one county file each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xiezuo.staffing.v1 import registry_pb2_grpc, staffing_pb2_grpc, training_pb2_grpc

from services.runtime.db import Database
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from services.staffing.api.registry_servicer import RegistryServicer
from services.staffing.api.servicer import StaffingServicer
from services.staffing.api.training_servicer import TrainingServicer
from services.staffing.domain.county_file import parse_county
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.drawing import TeamDrawer
from services.staffing.secrets import CountySecrets
from services.staffing.store.registry import import_county
from services.staffing.store.rule_files import load_recusal_grounds
from tests.conftest import MakeDatabase

REGISTRY_COUNTY = """
county: {county_id: c-rg, name: 测试县}
skills: [law]
zones:
  - zone_id: z-1
    name: 第一协作区
    chief: chief
    townships:
      - township_id: t-1
        name: 甲镇
        effective_from: 2026-01-01
        villages: [{village_id: v-1, name: 甲村}]
      - {township_id: t-2, name: 乙镇, effective_from: 2026-01-01}
  - zone_id: z-2
    name: 第二协作区
    townships:
      - {township_id: t-3, name: 丙镇, effective_from: 2026-01-01}
people:
  - {person_id: chief, name: 区长, roles: [zone_chief]}
  - {person_id: chief-2, name: 区长二, roles: [zone_chief]}
  - {person_id: head, name: 书记, roles: [commission_head, county_leadership]}
  - {person_id: p-2, name: 乙一, roles: [township_member], home_township: t-2}
"""
TRAINING_COUNTY = """
county: {county_id: c-tr, name: 测试县}
zones:
  - zone_id: z-1
    name: 第一协作区
    chief: chief
    townships:
      - township_id: t-1
        name: 甲镇
        effective_from: 2026-01-01
        villages: [{village_id: v-1, name: 甲村}]
  - zone_id: z-2
    name: 第二协作区
    townships:
      - {township_id: t-2, name: 乙镇, effective_from: 2026-01-01}
people:
  - {person_id: chief, name: 区长, roles: [zone_chief]}
  - {person_id: p-1, name: 甲一, roles: [township_member], home_township: t-1}
  - {person_id: p-2, name: 乙一, roles: [township_member], home_township: t-2}
  - {person_id: inf, name: 信息员, roles: [village_informant], village: v-1}
"""
STAFFING_COUNTY = """
county: {county_id: c-api, name: 测试县}
skills: [law]
zones:
  - zone_id: z-1
    name: 第一协作区
    chief: chief
    townships:
      - township_id: t-1
        name: 甲镇
        effective_from: 2026-01-01
        villages: [{village_id: v-1, name: 甲村}]
      - {township_id: t-2, name: 乙镇, effective_from: 2026-01-01}
      - {township_id: t-3, name: 丙镇, effective_from: 2026-01-01}
people:
  - {person_id: chief, name: 区长, roles: [zone_chief]}
  - {person_id: head, name: 书记, roles: [commission_head, county_leadership]}
  - {person_id: intake, name: 受理, roles: [intake_officer]}
  - {person_id: p-2a, name: 乙一, roles: [township_member], home_township: t-2}
  - {person_id: p-2b, name: 乙二, roles: [township_member], home_township: t-2}
  - {person_id: p-3a, name: 丙一, roles: [supervision_staff], home_township: t-3}
  - {person_id: p-3b, name: 丙二, roles: [supervision_staff], home_township: t-3}
  - {person_id: inf, name: 信息员, roles: [village_informant], village: v-1}
"""
ISSUER, AUDIENCE = "test", "xiezuo"


@dataclass
class Api:
    stub: Any
    issuer: TokenIssuer
    database: Database
    county_id: str

    def as_(self, subject: str, *roles: str, zones: tuple[str, ...] = ("z-1",)) -> Any:
        """Call metadata for a principal of the test county."""
        token = self.issuer.issue(
            Principal(
                subject=subject, roles=frozenset(roles), county_id=self.county_id, zone_ids=zones
            )
        )
        return (("authorization", f"Bearer {token}"),)


@dataclass
class DrawingApi(Api):
    drawer: TeamDrawer


async def county_database(make_database: MakeDatabase, county: str) -> Database:
    """A migrated staffing database holding one county file."""
    database = await make_database("staffing")
    async with database.transaction() as session:
        await import_county(session, parse_county(county), actor="test")
    return database


@asynccontextmanager
async def serving(
    service: str, register: Callable[[grpc.aio.Server], None], stub: Callable[[Any], Any]
) -> AsyncIterator[tuple[Any, TokenIssuer]]:
    """One service behind a real authenticated gRPC endpoint: its stub and a token issuer."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=[f"xiezuo.staffing.v1.{service}"],
        register=register,
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield stub(channel), TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE)
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


@pytest.fixture
async def registry_api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    """RegistryService over county c-rg."""
    database = await county_database(make_database, REGISTRY_COUNTY)
    servicer = RegistryServicer(database)
    async with serving(
        "RegistryService",
        lambda server: registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server),
        registry_pb2_grpc.RegistryServiceStub,
    ) as (stub, issuer):
        yield Api(stub, issuer, database, "c-rg")


@pytest.fixture
async def training_api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    """TrainingService over county c-tr."""
    database = await county_database(make_database, TRAINING_COUNTY)
    servicer = TrainingServicer(database)
    async with serving(
        "TrainingService",
        lambda server: training_pb2_grpc.add_TrainingServiceServicer_to_server(servicer, server),
        training_pb2_grpc.TrainingServiceStub,
    ) as (stub, issuer):
        yield Api(stub, issuer, database, "c-tr")


@pytest.fixture
async def staffing_api(make_database: MakeDatabase) -> AsyncIterator[tuple[DrawingApi, Any]]:
    """StaffingService over county c-api, with its drawer, and the database."""
    database = await county_database(make_database, STAFFING_COUNTY)
    drawer = TeamDrawer(CountySecrets(b"s" * 32), [DEFAULT_DRAW_RULES])
    servicer = StaffingServicer(database, drawer, load_recusal_grounds())
    async with serving(
        "StaffingService",
        lambda server: staffing_pb2_grpc.add_StaffingServiceServicer_to_server(servicer, server),
        staffing_pb2_grpc.StaffingServiceStub,
    ) as (stub, issuer):
        yield DrawingApi(stub, issuer, database, "c-api", drawer), database
