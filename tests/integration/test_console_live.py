"""The console's live notices on the real broker, filtered by the real cases service.

A deadline notice published on Kafka reaches the event stream of the chief of the case's zone
and not the chief of another zone: the console asks cases (GetCase with each user's own token)
and forwards only what cases lets that user read. Topics are private to this test, and the
console reads without a consumer group, so nothing here meets another test's group.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xiezuo.cases.v1 import cases_pb2_grpc

from services.cases.api.servicer import CaseServicer
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.store.case_reader import CaseReader
from services.cases.store.clues import ClueReader
from services.cases.store.links import ClueLinks
from services.cases.store.rectification import RectificationDesk
from services.cases.store.workflow import Workflow
from services.console import app as console_app
from services.console.live import Audience, LiveFeed, Notice, ServiceGate, Viewer, notices_for
from services.console.settings import ConsoleSettings
from services.console.signin import DevPerson
from services.contracts.cases import DeadlineApproaching
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.localstack import KafkaNode
from services.runtime.migrate import upgrade_async
from services.runtime.settings import PlatformSettings
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier, ensure_dev_keypair
from tests.console_forms import csrf_token
from tests.integration.helpers import (
    WAIT_SECONDS,
    create_topics,
    produce,
    register_case_clue,
    unique,
    wait_until,
)

pytestmark = pytest.mark.kafka

ISSUER, AUDIENCE = "test", "xiezuo"
NOW = datetime.now(UTC)


@dataclass
class Cases:
    """A real cases gRPC service over its own database, and a minter of users' tokens."""

    channel: grpc.aio.Channel
    issuer: TokenIssuer
    db: Database

    def viewer(self, subject: str, *roles: str, zones: tuple[str, ...]) -> Viewer:
        """A signed-in user of county c1 with these roles over these zones."""
        principal = Principal(
            subject=subject, roles=frozenset(roles), county_id="c1", zone_ids=zones
        )
        return Viewer(subject=subject, county_id="c1", token=self.issuer.issue(principal))


@pytest.fixture
async def cases(tmp_path: Path) -> AsyncIterator[Cases]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cases.sqlite3'}"
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    endpoint = _cases_endpoint(database, TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE))
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Cases(channel, TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE), database)
    finally:
        await channel.close()
        await endpoint.stop(grace=0)
        await database.dispose()


def _cases_endpoint(database: Database, verifier: TokenVerifier) -> GrpcEndpoint:
    """cases' real CaseService over `database` on a free port, trusting `verifier`'s keys."""
    rules = {DEFAULT_RULES.version: DEFAULT_RULES}
    servicer = CaseServicer(
        ClueReader(database),
        CaseReader(database),
        Workflow(database, rules),
        back_entry_days=400,
        rectifications=RectificationDesk(database, lambda _: DEFAULT_RULES),
        links=ClueLinks(database, rules),
    )
    return GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.cases.v1.CaseService"],
        register=lambda server: cases_pb2_grpc.add_CaseServiceServicer_to_server(servicer, server),
        verifier=verifier,
    )


def _deadline_record(clue_id: str, zone: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    event = DeadlineApproaching(
        county_id="c1",
        zone_id=zone,
        deadline_id=unique("deadline"),
        case_id=clue_id,
        kind="disposal",
        due_at=NOW + timedelta(days=2),
        rule_version=DEFAULT_RULES.version,
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/cases",
        time=NOW,
        county_id="c1",
        zone_id=zone,
        data=event.model_dump_json().encode(),
        subject=clue_id,
    )
    return event.partition_key().encode(), envelope.data, envelope.headers()


async def _stream(
    feed: LiveFeed, viewer: Viewer, gate: ServiceGate, into: list[dict[str, object]]
) -> None:
    """One user's event stream, parsed into `into` until cancelled."""

    async def connected() -> bool:
        return False

    def render(notice: Notice) -> dict[str, object]:
        return notice.payload()

    stream = notices_for(feed, Audience(viewer, gate), render, disconnected=connected)
    async for chunk in stream:
        for line in chunk.splitlines():
            if line.startswith("data: "):
                into.append(json.loads(line.removeprefix("data: ")))


async def _until(seen: list[dict[str, object]], count: int) -> None:
    async def arrived() -> bool:
        return len(seen) >= count

    await wait_until(arrived, f"{count} notices")


async def test_a_deadline_notice_reaches_its_zones_chief_and_not_another_zones(
    kafka: KafkaNode, cases: Cases
) -> None:
    topic = unique("console-live-deadlines")
    await create_topics(kafka.bootstrap_servers, topic)
    await register_case_clue(cases.db, "clue-z1", at=NOW, zone="z1", township="t1")
    await register_case_clue(cases.db, "clue-z2", at=NOW, zone="z2", township="t2")
    chief_z1 = cases.viewer("chief-1", "zone_chief", zones=("z1",))
    chief_z2 = cases.viewer("chief-2", "zone_chief", zones=("z2",))
    gate = ServiceGate(cases.channel, cases.channel)
    feed = LiveFeed(kafka.bootstrap_servers, topics=[topic], client_id=unique("console-live"))
    seen_z1: list[dict[str, object]] = []
    seen_z2: list[dict[str, object]] = []
    await feed.start()
    streams = [
        asyncio.create_task(_stream(feed, chief_z1, gate, seen_z1)),
        asyncio.create_task(_stream(feed, chief_z2, gate, seen_z2)),
    ]
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            await feed.ready.wait()
        # One partition, so every stream considers z1's notice before z2's.
        await produce(
            kafka.bootstrap_servers,
            topic,
            [_deadline_record("clue-z1", "z1"), _deadline_record("clue-z2", "z2")],
        )
        await _until(seen_z2, 1)
        # A last notice for zone 1: once chief 1 has it, chief 1 has judged zone 2's too.
        await produce(kafka.bootstrap_servers, topic, [_deadline_record("clue-z1", "z1")])
        await _until(seen_z1, 2)
        assert [n["subject_id"] for n in seen_z1] == ["clue-z1", "clue-z1"]
        facts = seen_z1[0]["facts"]
        assert isinstance(facts, dict) and set(facts) == {"kind", "due_at"}
        assert facts["kind"] == "disposal"
        # Chief 2 was refused clue-z1 by cases (another zone) and got only their own zone's.
        assert [n["subject_id"] for n in seen_z2] == ["clue-z2"]
    finally:
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await feed.stop()


def _dev_person(person_id: str, zone: str) -> DevPerson:
    return DevPerson(
        person_id=person_id,
        name=f"Chief of {zone}",
        roles=("zone_chief",),
        county_id="c1",
        zone_id=zone,
        zone_name=zone,
        township_id=f"t-{zone}",
    )


async def _sign_in(client: httpx.AsyncClient, person_id: str) -> None:
    """The dev sign-in form, as a browser submits it (CSRF token from the page)."""
    page = await client.get("/sign-in")
    answer = await client.post(
        "/sign-in/dev", data={"person_id": person_id, "csrf_token": csrf_token(page.text)}
    )
    assert answer.status_code == 303, answer.text[:500]


async def _read_events(
    client: httpx.AsyncClient, into: list[dict[str, object]], subscribed: asyncio.Event
) -> None:
    async with client.stream("GET", "/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line == ": subscribed":
                subscribed.set()
            elif line.startswith("data: "):
                into.append(json.loads(line.removeprefix("data: ")))


async def test_the_events_page_streams_a_notice_to_its_zones_chief_only(
    kafka: KafkaNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the console's own app: sign-in, /events, the feed it starts, cases' answer."""
    topic = unique("console-live-http")
    await create_topics(kafka.bootstrap_servers, topic)
    platform = PlatformSettings(
        state_dir=tmp_path / "state", kafka_bootstrap=kafka.bootstrap_servers
    )
    # The console signs its users' tokens with the dev key; cases trusts that key.
    _, public_path = ensure_dev_keypair(platform.state_dir / "keys")
    url = f"sqlite+aiosqlite:///{tmp_path / 'cases.sqlite3'}"
    await upgrade_async("cases", url)
    database = Database(url, audit_key=AuditKey.generate())
    await register_case_clue(database, "clue-z1", at=NOW, zone="z1", township="t1")
    endpoint = _cases_endpoint(
        database,
        TokenVerifier(
            [public_path.read_bytes()],
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        ),
    )
    port = await endpoint.start()
    for service in ("cases", "collaboration"):
        monkeypatch.setenv(f"XIEZUO_{service.upper()}_GRPC_PORT", str(port))
    # The app's own feed, on this test's private topic instead of the shared ones.
    monkeypatch.setattr(console_app, "LiveFeed", functools.partial(LiveFeed, topics=[topic]))
    app = console_app.build_app(ConsoleSettings(http_port=0, dev_sign_in=True), platform)
    app.state.dev_people = [_dev_person("chief-1", "z1"), _dev_person("chief-2", "z2")]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    serving = asyncio.create_task(server.serve())
    readers: list[asyncio.Task[None]] = []
    try:
        await wait_until(_started(server), "the console to listen")
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        seen: dict[str, list[dict[str, object]]] = {"chief-1": [], "chief-2": []}
        clients = []
        for person in seen:
            client = httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS)
            clients.append(client)
            await _sign_in(client, person)
            subscribed = asyncio.Event()
            readers.append(asyncio.create_task(_read_events(client, seen[person], subscribed)))
            async with asyncio.timeout(WAIT_SECONDS):
                await subscribed.wait()
        feed: LiveFeed = app.state.live_feed
        async with asyncio.timeout(WAIT_SECONDS):
            await feed.ready.wait()
        await produce(kafka.bootstrap_servers, topic, [_deadline_record("clue-z1", "z1")])
        await _until(seen["chief-1"], 1)
        (notice,) = seen["chief-1"]
        assert notice["href"] == "/cases/clue-z1"
        assert notice["tone"] == "info"
        # Worded in the signed-in user's language (Chinese by default).
        assert "clue-z1" in str(notice["text"]) and "线索处置" in str(notice["text"])
        # Chief 2's stream took the same notice first and was refused it by cases: a second
        # notice both may see shows chief 2's reader is past it.
        await register_case_clue(database, "clue-z2", at=NOW, zone="z2", township="t2")
        await produce(kafka.bootstrap_servers, topic, [_deadline_record("clue-z2", "z2")])
        await _until(seen["chief-2"], 1)
        assert [n["href"] for n in seen["chief-2"]] == ["/cases/clue-z2"]
        for client in clients:
            await client.aclose()
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT_SECONDS)
        await endpoint.stop(grace=0)
        await database.dispose()


def _started(server: uvicorn.Server) -> Callable[[], Awaitable[bool]]:
    async def started() -> bool:
        return bool(server.started)

    return started
