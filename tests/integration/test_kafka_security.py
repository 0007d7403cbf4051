"""Secured Kafka: each service over SASL_SSL with its own SCRAM user and least-privilege ACLs.

A broker of its own (the session broker stays plain text): TLS certificates made here, SCRAM
users created when its storage is formatted, the StandardAuthorizer on, and the ACLs a
generated KafkaUser grants: Write on the topics a service publishes, Read on those it consumes,
Read on its own consumer group, Describe on all of them; nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import ipaddress
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from aiokafka.protocol.admin import CreateAclsRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from faststream.kafka.annotations import KafkaMessage
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.contracts.intake import CLUES_TOPIC
from services.runtime.bus import build_broker
from services.runtime.host import ServiceHost, TopicsMissing, TopicsRefused, ensure_topics
from services.runtime.kafka_security import KafkaSecurity, connection_refusal
from services.runtime.localstack.kafka import BrokerSecurity, KafkaNode
from services.runtime.outbox import KafkaEventProducer
from services.runtime.settings import SERVICES, PlatformSettings, Settings
from services.runtime.tokens import ensure_dev_keypair, mint_dev_token

pytestmark = pytest.mark.kafka

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60.0
# Services that get a Kafka user with ACLs here; staffing gets a user and no rights at all.
GRANTED = ("intake", "cases")
BROKER_SUBJECT = "CN=broker"
RUN = uuid.uuid4().hex[:8]

# Kafka's wire codes for the ACLs below (org.apache.kafka.common.acl / resource).
TOPIC, GROUP = 2, 3
LITERAL = 3
READ, WRITE, DESCRIBE = 3, 4, 8
ALLOW = 3


def user_of(service: str) -> str:
    """The SCRAM user (and KafkaUser name) of a service."""
    return f"xiezuo-{service}"


# -- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA, the broker's key store, and one client certificate (mutual TLS as intake)."""

    ca: Path
    broker_keystore: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    common_name: str,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
    *,
    server: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate signed by `issuer` (self-signed CA when None), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer[1].subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            # The broker is also a client: of its controller, over mutual TLS.
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    signer = issuer[0] if issuer else key
    return key, builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Write the CA, the broker's PEM key store and intake's client certificate to `directory`."""
    ca = _issue("xiezuo-test-ca", None)
    broker_key, broker_cert = _issue(BROKER_SUBJECT.removeprefix("CN="), ca, server=True)
    client_key, client_cert = _issue(user_of("intake"), ca)
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca[1].public_bytes(pem),
        # Kafka's PEM key store: the private key (PKCS#8), then the certificate chain.
        "broker.keystore.pem": _pem_key(broker_key) + broker_cert.public_bytes(pem),
        "intake.crt": client_cert.public_bytes(pem),
        "intake.key": _pem_key(client_key),
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
        (directory / name).chmod(0o600)
    return Pki(
        ca=directory / "ca.pem",
        broker_keystore=directory / "broker.keystore.pem",
        client_cert=directory / "intake.crt",
        client_key=directory / "intake.key",
    )


# -- the secured broker ---------------------------------------------------------------------


@dataclass
class SecuredKafka:
    """The running broker, the users' password files, and what each service may touch."""

    node: KafkaNode
    pki: Pki
    state_dir: Path
    password_files: dict[str, Path]
    written: dict[str, list[str]]
    read: dict[str, list[str]]

    @property
    def bootstrap(self) -> str:
        return self.node.bootstrap_servers

    def security(self, service: str, *, password_file: Path | None = None) -> KafkaSecurity:
        """SASL_SSL as the service's own user."""
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_username=user_of(service),
            sasl_password_file=password_file or self.password_files[service],
            ca_file=self.pki.ca,
        )

    def admin(self) -> KafkaSecurity:
        security = self.node.admin_security()
        assert security is not None
        return security

    def env(self, service: str, *, password_file: Path | None = None) -> dict[str, str]:
        """What a production Deployment sets for the service (plus local ports and state)."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("XIEZUO_", "OTEL_"))
        }
        prefix = f"XIEZUO_{service.upper()}_"
        env.update(
            {
                "XIEZUO_STATE_DIR": str(self.state_dir),
                "XIEZUO_KAFKA_BOOTSTRAP": self.bootstrap,
                "XIEZUO_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "XIEZUO_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "XIEZUO_KAFKA_SASL_USERNAME": user_of(service),
                "XIEZUO_KAFKA_SASL_PASSWORD_FILE": str(
                    password_file or self.password_files[service]
                ),
                "XIEZUO_KAFKA_CA_FILE": str(self.pki.ca),
                "XIEZUO_KAFKA_CREATE_TOPICS": "false",
                f"{prefix}GRPC_PORT": "0",
                f"{prefix}METRICS_PORT": "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env


async def service_host(service: str, platform: PlatformSettings) -> ServiceHost:
    """The service's host as its app wires it (routes included), started nowhere."""
    app = importlib.import_module(f"services.{service}.app")
    return app.build(Settings(service, platform))[0]


async def grant(
    admin: AIOKafkaAdminClient, principal: str, acls: list[tuple[int, str, int]]
) -> None:
    """Allow `principal` each (resource type, name, operation) from any host."""
    for resource_type, name, operation in acls:
        request = CreateAclsRequest(resource_type, name, LITERAL, principal, "*", operation, ALLOW)
        response = await admin._client.send(admin._client.get_random_node(), request)
        ((code, message),) = response.creation_responses
        assert code == 0, f"ACL {principal} {name} {operation}: {code} {message}"


def least_privilege(written: list[str], read: list[str], group: str) -> list[tuple[int, str, int]]:
    """The shape of a generated KafkaUser's ACLs."""
    acls = [(TOPIC, topic, operation) for topic in written for operation in (WRITE, DESCRIBE)]
    acls += [(TOPIC, topic, operation) for topic in read for operation in (READ, DESCRIBE)]
    acls.append((GROUP, group, READ))
    return acls


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecuredKafka]:
    """A SASL_SSL + mutual-TLS broker with the StandardAuthorizer, topics and ACLs in place."""
    secrets = tmp_path_factory.mktemp("kafka-secrets")
    state_dir = tmp_path_factory.mktemp("xiezuo-state")
    ensure_dev_keypair(state_dir / "keys")
    pki = make_pki(secrets)
    passwords = {service: uuid.uuid4().hex for service in (*GRANTED, "staffing")}
    password_files: dict[str, Path] = {}
    for service, password in passwords.items():
        path = secrets / f"{service}.password"
        # Mounted Secrets often end with a newline; the client must not send it.
        path.write_text(password + "\n")
        path.chmod(0o600)
        password_files[service] = path
    node = KafkaNode(
        security=BrokerSecurity(
            ca_file=pki.ca,
            keystore_file=pki.broker_keystore,
            broker_subject=BROKER_SUBJECT,
            admin_user="admin",
            admin_password=uuid.uuid4().hex,
            users={user_of(service): password for service, password in passwords.items()},
        )
    )
    await node.astart()
    try:
        platform = PlatformSettings(state_dir=state_dir, kafka_create_topics=False)
        hosts = {service: await service_host(service, platform) for service in SERVICES}
        written = {service: host.topics_written() for service, host in hosts.items()}
        read = {service: host.topics_read() for service, host in hosts.items()}
        for host in hosts.values():
            await host.producer.stop()
            await host.database.dispose()
        kafka = SecuredKafka(node, pki, state_dir, password_files, written, read)
        # The operator's part (KafkaTopic, KafkaUser): every topic, then each user's ACLs.
        dead_letters = [f"xiezuo.{service}.dead-letter" for service in SERVICES]
        await ensure_topics(
            kafka.bootstrap,
            *dead_letters,
            partitions=3,
            replication_factor=1,
            security=kafka.admin(),
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=kafka.bootstrap, **kafka.admin().client_kwargs()
        )
        await admin.start()
        try:
            for service in GRANTED:
                acls = least_privilege(written[service], read[service], user_of(service))
                await grant(admin, f"User:{user_of(service)}", acls)
            # Intake's certificate (mutual TLS) gets the same rights as its SCRAM user.
            await grant(
                admin,
                f"User:CN={user_of('intake')}",
                least_privilege(written["intake"], read["intake"], user_of("intake")),
            )
        finally:
            await admin.close()
        yield kafka
    finally:
        await node.astop()


# -- service processes ----------------------------------------------------------------------


@dataclass
class Process:
    """One `xiezuo serve <service>` and its log files."""

    name: str
    process: asyncio.subprocess.Process
    stdout: Path
    stderr: Path

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def ready(self) -> dict[str, str] | None:
        for line in self.stdout.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and isinstance(message.get("ready"), dict):
                    return dict(message["ready"])
        return None


@contextlib.contextmanager
def _log_files(*paths: Path) -> Iterator[list[IO[bytes]]]:
    # Files, not pipes: a chatty service never blocks on a pipe nobody reads.
    with contextlib.ExitStack() as files:
        yield [files.enter_context(open(path, "wb")) for path in paths]


@contextlib.asynccontextmanager
async def serving(service: str, env: dict[str, str], log_dir: Path) -> AsyncIterator[Process]:
    """Run the service as an OS process; SIGTERM and wait on exit."""
    stdout, stderr = log_dir / f"{service}.stdout", log_dir / f"{service}.stderr"
    with _log_files(stdout, stderr) as (out, err):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli.main",
            "serve",
            service,
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    running = Process(service, process, stdout, stderr)
    try:
        yield running
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


async def until_ready(service: Process) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_SECONDS
    while (ready := service.ready()) is None:
        if service.process.returncode is not None:
            pytest.fail(f"{service.name} exited ({service.process.returncode}):\n{service.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{service.name} not ready within {WAIT_SECONDS:.0f} s:\n{service.logs()}")
        await asyncio.sleep(0.2)
    return ready


def submit_request() -> intake_pb2.SubmitReportRequest:
    return intake_pb2.SubmitReportRequest(
        idempotency_key=f"secured-{RUN}",
        county_id=f"county-{RUN}",
        zone_id=f"zone-{RUN}",
        township_id="township-1",
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name="Li Official",
            post="village party secretary",
            unit="Hexi village committee",
            township_id="township-1",
            village="Hexi",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement"],
        content="Subsidies were paid to the secretary's relatives.",
    )


async def group_caught_up(kafka: SecuredKafka, group: str, topic: str) -> tuple[int, int]:
    """(records on `topic`, records `group` has committed past), read as the admin."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.admin().client_kwargs())
    reader = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, **kafka.admin().client_kwargs())
    await admin.start()
    await reader.start()
    try:
        partitions = [TopicPartition(topic, number) for number in range(3)]
        ends = await reader.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        done = sum(max(0, meta.offset) for meta in committed.values())
        return sum(ends.values()), done
    finally:
        await reader.stop()
        await admin.close()


async def scrape(url: str) -> str:
    """The lag gauge's lines of a service's /metrics."""

    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            text: str = response.read().decode()
        return "\n".join(line for line in text.splitlines() if "xiezuo_consumer_lag" in line)

    return await asyncio.to_thread(get)


# -- tests ----------------------------------------------------------------------------------


async def test_intake_and_cases_run_over_sasl_ssl_each_as_its_own_user(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    """A report goes intake → outbox → Kafka → cases, with topics the services did not create."""
    async with (
        serving("intake", secured.env("intake"), tmp_path) as intake,
        serving("cases", secured.env("cases"), tmp_path) as cases,
    ):
        addresses = await until_ready(intake)
        cases_addresses = await until_ready(cases)
        token = mint_dev_token(
            key_dir=secured.state_dir / "keys",
            subject="secured-officer",
            roles=["intake_officer"],
            county_id=f"county-{RUN}",
            zone_ids=[f"zone-{RUN}"],
        )
        async with grpc.aio.insecure_channel(addresses["grpc"]) as channel:
            await intake_pb2_grpc.IntakeServiceStub(channel).SubmitReport(
                submit_request(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        # Intake's relay published with intake's user; cases read and committed in its group.
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            published, consumed = await group_caught_up(secured, user_of("cases"), CLUES_TOPIC)
            if published >= 1 and consumed == published:
                break
            assert time.monotonic() < deadline, (
                f"{CLUES_TOPIC}: {published} published, cases committed {consumed}\n"
                f"{intake.logs()}\n{cases.logs()}"
            )
            await asyncio.sleep(0.5)
        # Lag is measured with cases' own user too (Describe on its group and topics suffices).
        lag_line = f'topic="{CLUES_TOPIC}"'
        while lag_line not in (metrics := await scrape(cases_addresses["metrics"])):
            assert time.monotonic() < deadline, f"no lag gauge for {CLUES_TOPIC}:\n{metrics}"
            await asyncio.sleep(0.5)
        logs = intake.logs() + cases.logs()
    assert "Kafka refused" not in logs
    for service in GRANTED:
        password = secured.password_files[service].read_text().strip()
        assert password not in logs


async def test_a_service_user_is_refused_another_services_topic_and_group(
    secured: SecuredKafka,
) -> None:
    foreign = sorted(
        set(secured.written["cases"]) - set(secured.written["intake"]) - set(secured.read["intake"])
    )[0]
    producer = KafkaEventProducer(
        secured.bootstrap, client_id="intake-trespassing", security=secured.security("intake")
    )
    await producer.start()
    try:
        # Refused with a named error at once, not a send that hangs until a timeout.
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send(foreign, b"{}", b"key", []), WAIT_SECONDS)
        # Its own topic works on the same connection.
        own = secured.written["intake"][0]
        await asyncio.wait_for(await producer.send(own, b"{}", b"key", []), WAIT_SECONDS)
    finally:
        await producer.stop()

    intake_topics = {*secured.written["intake"], *secured.read["intake"]}
    unread = sorted(set(secured.written["staffing"]) - intake_topics)[0]
    consumer = AIOKafkaConsumer(
        unread,
        bootstrap_servers=secured.bootstrap,
        group_id=user_of("intake"),
        **secured.security("intake").client_kwargs(),
    )
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(consumer.start(), WAIT_SECONDS)
    await consumer.stop()

    # A topic it may read, but in cases' consumer group (cases' offsets): refused too.
    consumer = AIOKafkaConsumer(
        secured.read["intake"][0],
        bootstrap_servers=secured.bootstrap,
        group_id=user_of("cases"),
        **secured.security("intake").client_kwargs(),
    )
    with pytest.raises(GroupAuthorizationFailedError):
        await asyncio.wait_for(consumer.start(), WAIT_SECONDS)
    await consumer.stop()


async def test_a_wrong_password_is_reported_as_such_and_the_service_never_gets_ready(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    refused = await connection_refusal(
        secured.bootstrap, secured.security("intake", password_file=wrong)
    )
    assert isinstance(refused, SaslAuthenticationFailed)

    async with serving("intake", secured.env("intake", password_file=wrong), tmp_path) as intake:
        deadline = time.monotonic() + WAIT_SECONDS
        while "authentication failed for user 'xiezuo-intake'" not in intake.logs():
            assert intake.process.returncode is None, intake.logs()
            assert time.monotonic() < deadline, intake.logs()
            await asyncio.sleep(0.2)
        assert intake.ready() is None
        logs = intake.logs()
    assert "XIEZUO_KAFKA_SASL_PASSWORD_FILE" in logs
    assert "not-the-password" not in logs


async def test_topics_a_user_may_not_see_fail_readiness_by_name(secured: SecuredKafka) -> None:
    """With XIEZUO_KAFKA_CREATE_TOPICS=false nothing is created; what is missing is named."""
    platform = PlatformSettings(
        state_dir=secured.state_dir,
        kafka_bootstrap=secured.bootstrap,
        kafka_create_topics=False,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username=user_of("staffing"),
        kafka_sasl_password_file=secured.password_files["staffing"],
        kafka_ca_file=secured.pki.ca,
    )
    staffing = await service_host("staffing", platform)
    try:
        with pytest.raises(TopicsMissing) as missing:
            await staffing.prepare_topics()
    finally:
        await staffing.producer.stop()
        await staffing.database.dispose()
    assert set(missing.value.missing) == {
        *secured.written["staffing"],
        *secured.read["staffing"],
    }
    assert "xiezuo.staffing.dead-letter" in str(missing.value)
    # Left creating topics, a user without the right is refused, and start-up stops there.
    with pytest.raises(TopicsRefused, match=r"xiezuo\.staffing\.dead-letter"):
        await ensure_topics(
            secured.bootstrap,
            "xiezuo.staffing.dead-letter",
            partitions=3,
            replication_factor=1,
            security=secured.security("staffing"),
        )


async def test_mutual_tls_authenticates_by_certificate(secured: SecuredKafka) -> None:
    pki = secured.pki
    with_certificate = KafkaSecurity(
        protocol="SSL", ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
    )
    producer = KafkaEventProducer(
        secured.node.ssl_bootstrap_servers, client_id="intake-mtls", security=with_certificate
    )
    await producer.start()
    try:
        own = secured.written["intake"][0]
        await asyncio.wait_for(await producer.send(own, b"{}", b"key", []), WAIT_SECONDS)
        foreign = sorted(set(secured.written["cases"]) - set(secured.written["intake"]))[0]
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send(foreign, b"{}", b"key", []), WAIT_SECONDS)
    finally:
        await producer.stop()

    # The subscribing side (FastStream) with the same certificate reads what intake may read.
    readable, marker = secured.read["intake"][0], f"mtls-{uuid.uuid4().hex}".encode()
    received: asyncio.Queue[bytes] = asyncio.Queue()
    broker = build_broker(
        secured.node.ssl_bootstrap_servers,
        client_id="intake-mtls-reader",
        security=with_certificate,
    )

    async def on_record(body: Any, message: KafkaMessage) -> None:
        await received.put(message.raw_message.value)  # type: ignore[union-attr]

    broker.subscriber(readable, group_id=user_of("intake"), auto_offset_reset="earliest")(on_record)
    await asyncio.wait_for(broker.start(), WAIT_SECONDS)
    try:
        admin = AIOKafkaProducer(
            bootstrap_servers=secured.bootstrap, **secured.admin().client_kwargs()
        )
        await admin.start()
        try:
            await admin.send_and_wait(readable, marker)
        finally:
            await admin.stop()
        deadline = time.monotonic() + WAIT_SECONDS
        while (value := await asyncio.wait_for(received.get(), WAIT_SECONDS)) != marker:
            assert time.monotonic() < deadline, f"{marker!r} not received on {readable}"
        assert value == marker
    finally:
        await asyncio.wait_for(broker.stop(), WAIT_SECONDS)

    anonymous = KafkaEventProducer(
        secured.node.ssl_bootstrap_servers,
        client_id="no-certificate",
        security=KafkaSecurity(protocol="SSL", ca_file=pki.ca),
    )
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(anonymous.start(), WAIT_SECONDS)


async def test_the_cli_reads_dead_letters_over_sasl_ssl(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    env = secured.env("intake")
    admin = secured.admin()
    assert admin.sasl_username and admin.sasl_password_file
    env["XIEZUO_KAFKA_SASL_USERNAME"] = admin.sasl_username
    env["XIEZUO_KAFKA_SASL_PASSWORD_FILE"] = str(admin.sasl_password_file)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        "dead-letter",
        "list",
        "intake",
        "--json",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), WAIT_SECONDS)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == []
