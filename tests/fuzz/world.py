"""Every gRPC service of one county, served in-process on SQLite, seeded with a little data."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc
from xiezuo.staffing.v1 import (
    registry_pb2,
    registry_pb2_grpc,
    staffing_pb2,
    staffing_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)

from services.assessment.api.servicer import AssessmentServicer
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers.projection import township_placed
from services.assessment.store.scorecards import Scoring
from services.cases.api.servicer import CaseServicer
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.store.case_reader import CaseReader
from services.cases.store.clues import ClueReader
from services.cases.store.links import ClueLinks
from services.cases.store.rectification import RectificationDesk
from services.cases.store.workflow import Workflow
from services.contracts.staffing import TownshipPlaced
from services.intake.api.parts import IntakeParts
from services.intake.api.servicer import IntakeServicer
from services.intake.store.acceptance import AcceptanceDesk
from services.intake.store.duplicates import DuplicateDesk
from services.intake.store.exchange import ReporterChannel
from services.intake.store.receipts import ReceiptDesk
from services.intake.store.report_reader import ReportReader
from services.intake.store.reports import ReportRegistry
from services.intake.store.result_feedback import ResultDesk
from services.intake.store.reveals import RevealDesk
from services.intake.store.rule_files import load_rule_book
from services.intake.store.townships import TownshipRegistry, record_placement
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.migrate import upgrade_async
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
from tests.integration import intake_api
from tests.integration.helpers import register_case_clue

ISSUER, AUDIENCE, COUNTY = "xiezuo-fuzz", "xiezuo", "c1"
# Creates a database on a server by name and answers its URL (e.g. the test PostgreSQL).
ServerUrl = Callable[[str], Awaitable[str]]
NOW = datetime.now(UTC).replace(microsecond=0)
COUNTY_FILE = """
county: {county_id: c1, name: 测试县}
skills: [law]
zones:
  - zone_id: z1
    name: 第一协作区
    chief: chief
    townships:
      - township_id: t1
        name: 甲镇
        effective_from: 2026-01-01
        villages: [{village_id: v1, name: 甲村}]
      - {township_id: t2, name: 乙镇, effective_from: 2026-01-01}
  - zone_id: z2
    name: 第二协作区
    townships:
      - {township_id: t3, name: 丙镇, effective_from: 2026-01-01}
people:
  - {person_id: chief, name: 区长, roles: [zone_chief]}
  - {person_id: head, name: 书记, roles: [commission_head, county_leadership]}
  - {person_id: p2a, name: 乙一, roles: [township_member], home_township: t2}
  - {person_id: p2b, name: 乙二, roles: [township_member], home_township: t2}
  - {person_id: p3a, name: 丙一, roles: [supervision_staff], home_township: t3}
  - {person_id: inf, name: 信息员, roles: [village_informant], village: v1}
"""
ALL_ROLES = frozenset(
    {
        "assessor",
        "back_entry",
        "case_officer",
        "commission_head",
        "county_leadership",
        "custodian",
        "deputy_chief",
        "intake_officer",
        "party_committee",
        "reporter_portal",
        "staff_member",
        "supervision_staff",
        "zone_chief",
    }
)
# The callers a fuzzed request goes out as: a county-wide holder of every role most often.
PRINCIPALS = (
    Principal("fuzzer", ALL_ROLES, COUNTY, ("*",), ("t1",)),
    Principal("fuzzer", ALL_ROLES, COUNTY, ("*",), ("t1",)),
    Principal("chief", frozenset({"zone_chief", "case_officer"}), COUNTY, ("z1",)),
    Principal("portal", frozenset({"reporter_portal"}), COUNTY),
)
MODULES = (
    intake_pb2,
    cases_pb2,
    staffing_pb2,
    registry_pb2,
    training_pb2,
    assessment_pb2,
)
SERVICE_DATABASE = {
    "xiezuo.intake.v1.IntakeService": "intake",
    "xiezuo.cases.v1.CaseService": "cases",
    "xiezuo.staffing.v1.StaffingService": "staffing",
    "xiezuo.staffing.v1.RegistryService": "staffing",
    "xiezuo.staffing.v1.TrainingService": "staffing",
    "xiezuo.assessment.v1.AssessmentService": "assessment",
}
STUBS: dict[str, Callable[[grpc.aio.Channel], Any]] = {
    "xiezuo.intake.v1.IntakeService": intake_pb2_grpc.IntakeServiceStub,
    "xiezuo.cases.v1.CaseService": cases_pb2_grpc.CaseServiceStub,
    "xiezuo.staffing.v1.StaffingService": staffing_pb2_grpc.StaffingServiceStub,
    "xiezuo.staffing.v1.RegistryService": registry_pb2_grpc.RegistryServiceStub,
    "xiezuo.staffing.v1.TrainingService": training_pb2_grpc.TrainingServiceStub,
    "xiezuo.assessment.v1.AssessmentService": assessment_pb2_grpc.AssessmentServiceStub,
}


@dataclass(frozen=True)
class Rpc:
    """One method of one service: its full name and request type."""

    service: str
    method: MethodDescriptor = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.service.rsplit('.', 1)[1]}.{self.method.name}"

    def request_class(self) -> Any:
        return message_factory.GetMessageClass(self.method.input_type)


def every_rpc() -> list[Rpc]:
    """Every method of every service the four services' protos declare."""
    return [
        Rpc(service.full_name, method)
        for module in MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


@dataclass
class Served:
    """One running service: a stub, the issuer its verifier trusts, its health and database."""

    stub: Any
    issuer: TokenIssuer
    health: Any
    database_file: Path

    def bearer(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.issuer.issue(principal)}"),)


@dataclass
class World:
    """The running services by full service name, and the ids the seed created."""

    services: dict[str, Served] = field(default_factory=dict, repr=False)
    known: list[str] = field(default_factory=list, repr=False)
    # Plausible values of string fields whose name contains the key (first match wins).
    pools: dict[str, list[str]] = field(default_factory=dict, repr=False)


def _keys() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@asynccontextmanager
async def _endpoint(
    names: list[str], register: Callable[[grpc.aio.Server], None]
) -> AsyncIterator[tuple[grpc.aio.Channel, TokenIssuer]]:
    private, public = _keys()
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=names,
        register=register,
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE)
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


async def _database(
    directory: Path, service: str, server_url: ServerUrl | None
) -> tuple[Database, Path]:
    path = directory / f"{service}-{uuid.uuid4().hex[:6]}.sqlite3"
    if server_url is None:
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = await server_url(f"{service}_{uuid.uuid4().hex[:10]}")
    await upgrade_async(service, url)
    return Database(url, audit_key=AuditKey.generate()), path


def _placements() -> list[TownshipPlaced]:
    return [
        TownshipPlaced(
            county_id=COUNTY,
            zone_id=zone,
            township_id=township,
            township_name=township,
            effective_from=date(2026, 1, 1),
        )
        for zone, township in (("z1", "t1"), ("z1", "t2"), ("z2", "t3"))
    ]


@asynccontextmanager
async def running_world(
    directory: Path, server_url: ServerUrl | None = None
) -> AsyncIterator[World]:
    """All six gRPC services of the four domains, seeded, until the block ends.

    On SQLite files in directory, or on databases `server_url(name)` creates (PostgreSQL);
    only SQLite files can be digested.
    """
    people = ["chief", "head", "p2a", "p2b", "p3a", "inf"]
    days = ["2026-07-01", "2026-01-01", "2026-09-30", "2025-12-31"]
    world = World(
        pools={
            "page_token": [""],
            "county_id": [COUNTY],
            "township": ["t1", "t2", "t3"],
            "zone_id": ["z1", "z2"],
            "quarter": ["2026Q3", "2026Q1", "2025Q4"],
            "period": ["2026Q3", "2026"],
            "person_id": people,
            "subject_id": [*people, "z1", "t1"],
            "role": sorted(ALL_ROLES | {"township_member", "village_informant"}),
            "date": days,
            "day": days,
            "_on": days,
            "_from": days,
            "_until": days,
            "village": ["v1"],
            "categor": ["poverty_alleviation_funds"],
        },
        known=[
            *("c1", "c2", "z1", "z2", "t1", "t2", "t3", "v1", "k1"),
            *("chief", "head", "p2a", "p2b", "p3a", "inf", "fuzzer"),
            *("2026Q3", "2026Q1", "2026", "2026-07-01", "2026-01-01", "2026-12-31"),
            *(
                "letter",
                "poverty_alleviation_funds",
                "investigation",
                "disposal",
                "accept",
                "approve",
            ),
        ],
    )
    async with AsyncExitStack() as stack:
        databases: list[Database] = []

        async def database(service: str) -> tuple[Database, Path]:
            made = await _database(directory, service, server_url)
            databases.append(made[0])
            return made

        intake_db, intake_file = await database("intake")
        async with intake_db.transaction() as session:
            for placed in _placements():
                await record_placement(session, placed)
        intake = IntakeServicer(_intake_parts(intake_db))
        await _serve(
            stack,
            world,
            "xiezuo.intake.v1.IntakeService",
            lambda server: intake_pb2_grpc.add_IntakeServiceServicer_to_server(intake, server),
            intake_file,
        )

        cases_db, cases_file = await database("cases")
        await register_case_clue(cases_db, "k1", at=NOW)
        cases = CaseServicer(
            ClueReader(cases_db),
            CaseReader(cases_db),
            Workflow(cases_db, {DEFAULT_RULES.version: DEFAULT_RULES}),
            back_entry_days=400,
            rectifications=RectificationDesk(cases_db, lambda _: DEFAULT_RULES),
            links=ClueLinks(cases_db, {DEFAULT_RULES.version: DEFAULT_RULES}),
        )
        await _serve(
            stack,
            world,
            "xiezuo.cases.v1.CaseService",
            lambda server: cases_pb2_grpc.add_CaseServiceServicer_to_server(cases, server),
            cases_file,
        )

        staffing_db, staffing_file = await database("staffing")
        async with staffing_db.transaction() as session:
            await import_county(session, parse_county(COUNTY_FILE), actor="fuzz")
        drawer = TeamDrawer(CountySecrets(b"s" * 32), [DEFAULT_DRAW_RULES])
        staffing = StaffingServicer(staffing_db, drawer, load_recusal_grounds())
        registry = RegistryServicer(staffing_db)
        training = TrainingServicer(staffing_db)
        await _serve(
            stack,
            world,
            "xiezuo.staffing.v1.StaffingService",
            lambda server: staffing_pb2_grpc.add_StaffingServiceServicer_to_server(
                staffing, server
            ),
            staffing_file,
        )
        await _serve(
            stack,
            world,
            "xiezuo.staffing.v1.RegistryService",
            lambda server: registry_pb2_grpc.add_RegistryServiceServicer_to_server(
                registry, server
            ),
            staffing_file,
        )
        await _serve(
            stack,
            world,
            "xiezuo.staffing.v1.TrainingService",
            lambda server: training_pb2_grpc.add_TrainingServiceServicer_to_server(
                training, server
            ),
            staffing_file,
        )

        assessment_db, assessment_file = await database("assessment")
        async with assessment_db.transaction() as session:
            for placed in _placements():
                envelope = Envelope(
                    uuid.uuid4().hex, placed.event_type, "fuzz", NOW, COUNTY, placed.zone_id, b"{}"
                )
                await township_placed(session, placed, envelope)
        assessment = AssessmentServicer(assessment_db, Scoring(load_rules()), AssessmentCalendar())
        await _serve(
            stack,
            world,
            "xiezuo.assessment.v1.AssessmentService",
            lambda server: assessment_pb2_grpc.add_AssessmentServiceServicer_to_server(
                assessment, server
            ),
            assessment_file,
        )
        await _seed_report(world)
        try:
            yield world
        finally:
            for made in databases:
                await made.dispose()


def _intake_parts(database: Database) -> IntakeParts:
    """Intake's parts as its API tests build them (their keys and back-entry window)."""
    book = load_rule_book()
    vault, receipt_keys = intake_api.VAULT, intake_api.RECEIPT_KEYS
    return IntakeParts(
        rule_book=book,
        registry=ReportRegistry(database, vault, book, receipt_keys),
        reports=ReportReader(database),
        receipts=ReceiptDesk(database, book, receipt_keys),
        channel=ReporterChannel(database, vault),
        reveals=RevealDesk(database, vault),
        acceptance=AcceptanceDesk(database, vault),
        duplicates=DuplicateDesk(database, book),
        townships=TownshipRegistry(database),
        back_entry_days=intake_api.WINDOW_DAYS,
        results=ResultDesk(database, vault),
    )


async def _serve(
    stack: AsyncExitStack,
    world: World,
    name: str,
    register: Callable[[grpc.aio.Server], None],
    database_file: Path,
) -> None:
    channel, issuer = await stack.enter_async_context(_endpoint([name], register))
    world.services[name] = Served(
        STUBS[name](channel), issuer, health_pb2_grpc.HealthStub(channel), database_file
    )


async def _seed_report(world: World) -> None:
    """One real report, so its report, clue and receipt ids are among the fuzzer's values."""
    intake = world.services["xiezuo.intake.v1.IntakeService"]
    response = await intake.stub.SubmitReport(
        intake_pb2.SubmitReportRequest(
            idempotency_key="seed-1",
            county_id=COUNTY,
            zone_id="z1",
            township_id="t1",
            channel=intake_pb2.REPORT_CHANNEL_LETTER,
            subject=intake_pb2.ReportedSubject(
                name="Li",
                post="village head",
                unit="Hexi village",
                township_id="t1",
                cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
            ),
            allegation_categories=["poverty_alleviation_funds"],
            content="the village head sold the collective's land",
        ),
        metadata=intake.bearer(PRINCIPALS[0]),
    )
    world.known.extend(
        value for value in (response.report_id, response.clue_id, response.receipt_code) if value
    )
    world.pools["report_id"] = [response.report_id]
    world.pools["clue_id"] = [response.clue_id, "k1"]
    world.pools["receipt_code"] = [response.receipt_code]


async def serving(world: World, name: str) -> bool:
    """Whether the service's health check answers SERVING."""
    reply = await world.services[name].health.Check(health_pb2.HealthCheckRequest(service=name))
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def digest(database_file: Path) -> dict[str, str]:
    """A hash of each table's rows (order-independent), to tell whether a call changed any."""
    hashes: dict[str, str] = {}
    with _read_only(database_file) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for table in tables:
            hasher = hashlib.sha256()
            for row in sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"')):
                hasher.update(row.encode())
            hashes[table] = hasher.hexdigest()
    return hashes


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield connection
    finally:
        connection.close()
