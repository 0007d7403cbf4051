"""A single-node KRaft Kafka broker run from Maven-resolved jars, for dev, tests and CI.

Sync use::

    with KafkaNode() as node:          # temp state dir, free ports, removed on exit
        print(node.bootstrap_servers)

Async use::

    async with KafkaNode(state_dir) as node:
        ...

Environment: ``XIEZUO_CACHE_DIR`` (cache root; jars go to ``<root>/kafka-libs``, default
``<repo>/.cache``), ``JAVA_HOME`` (else ``java`` on PATH), ``XIEZUO_KAFKA_JAVA_OPTS`` (extra
JVM flags). Run ``python -m services.runtime.localstack.kafka --help`` for a foreground broker.

``KafkaNode(security=BrokerSecurity(...))`` runs it secured instead of plain text: SASL_SSL with
SCRAM users, a mutual-TLS listener and ACLs enforced (tests/integration/test_kafka_security.py).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.kafka_security import KafkaSecurity
from services.runtime.localstack.ports import LOOPBACK, free_ports, is_port_free

REPO_ROOT = Path(__file__).resolve().parents[3]
KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "local" / "kafka"
POM_PATH = KAFKA_DEPLOY_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DEPLOY_DIR / "log4j2.properties"
COMPLETE_MARKER = ".complete"
PROBE_TOPIC = "_xiezuo_ready_probe"
BROKER_JAR_PREFIX = "kafka_2.13-"


class KafkaError(RuntimeError):
    """The local Kafka node could not be resolved, started or reached."""


def default_cache_dir() -> Path:
    """Return where the Kafka jars are cached: ``$XIEZUO_CACHE_DIR/kafka-libs``."""
    root = os.environ.get("XIEZUO_CACHE_DIR")
    return (Path(root) if root else REPO_ROOT / ".cache") / "kafka-libs"


def pom_digest(pom: Path = POM_PATH) -> str:
    """Return the sha256 of the pom; the cache is complete only for this digest."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def cached_jars(cache_dir: Path, pom: Path = POM_PATH) -> list[Path] | None:
    """Return the cached classpath if the cache is complete for this pom, else None."""
    marker = cache_dir / COMPLETE_MARKER
    try:
        if marker.read_text().strip() != pom_digest(pom):
            return None
    except FileNotFoundError:
        return None
    jars = sorted(cache_dir.glob("*.jar"))
    if not any(jar.name.startswith(BROKER_JAR_PREFIX) for jar in jars):
        return None
    return jars


def resolve_jars(
    cache_dir: Path | str | None = None, *, pom: Path = POM_PATH, mvn: str | None = None
) -> list[Path]:
    """Return the broker classpath, running Maven on the pom first if the cache is incomplete."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not pom.is_file():
        raise KafkaError(f"Kafka pom not found at {pom}; is this a source checkout of xiezuo?")
    jars = cached_jars(cache, pom)
    if jars is not None:
        return jars
    cache.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers or a concurrent `xiezuo up` may resolve at once: serialise them.
    with _file_lock(cache.parent / f".{cache.name}.lock"):
        jars = cached_jars(cache, pom)
        if jars is not None:
            return jars
        _copy_dependencies(cache, pom, mvn)
        jars = cached_jars(cache, pom)
    if jars is None:
        raise KafkaError(f"Maven ran but {cache} holds no {BROKER_JAR_PREFIX}*.jar")
    return jars


def _copy_dependencies(cache: Path, pom: Path, mvn: str | None) -> None:
    """Run Maven into a scratch dir and swap it in, so a failed run never looks complete."""
    mvn = mvn or shutil.which("mvn")
    if mvn is None:
        raise KafkaError(
            f"Kafka jars are not cached in {cache} and Maven (mvn) is not on PATH: "
            "install Maven (apt-get install -y maven) or run deploy/local/setup.sh"
        )
    scratch = cache.parent / f".{cache.name}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={scratch}",
    ]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise KafkaError(f"could not run Maven ({mvn}): {exc}") from exc
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        output = _tail_text(result.stdout + result.stderr, 40)
        raise KafkaError(
            f"Maven failed ({result.returncode}) resolving Kafka jars: {shlex.join(cmd)}\n{output}"
        )
    (scratch / COMPLETE_MARKER).write_text(pom_digest(pom) + "\n")
    shutil.rmtree(cache, ignore_errors=True)
    scratch.rename(cache)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path`."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_cluster_id() -> str:
    """Return a random cluster id in Kafka's Uuid format (url-safe base64, no padding)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's own Uuid.randomUuid() rejects ids starting with '-': they read as CLI flags.
        if not cluster_id.startswith("-"):
            return cluster_id


def render_server_properties(
    *,
    port: int,
    controller_port: int,
    log_dir: Path,
    partitions: int = 3,
    host: str = LOOPBACK,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """Return server.properties for one combined broker+controller node."""
    settings: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A static voter set (not --standalone's dynamic quorum) keeps working when a reused
        # state dir is started on different ports: the voter endpoint is read from here.
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        # Fewer internal partitions than the default 50 make the first group join fast.
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "3",
        "num.io.threads": "4",
        "log.segment.bytes": str(32 * 1024 * 1024),
        "log.retention.hours": "72",
        "log.retention.check.interval.ms": "60000",
    }
    settings.update(overrides or {})
    lines = ["# Written by services.runtime.localstack.kafka; rewritten on every start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


# ACLs are enforced by KRaft's own authorizer; principals are SCRAM user names on the SASL_SSL
# listener and certificate subjects ("CN=...") on the mutual-TLS ones.
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class BrokerSecurity:
    """TLS, SCRAM users and ACL enforcement for a local broker (the secured-Kafka tests).

    The node then listens with SASL_SSL (SCRAM-SHA-512) on its port and with mutual TLS on a
    second one; brokers and controller talk mutual TLS, as the certificate's subject.
    """

    # PEM: the CA that signed the broker's certificate and every client certificate.
    ca_file: Path
    # PEM: the broker's private key (PKCS#8, unencrypted) followed by its certificate; the
    # certificate names 127.0.0.1 so clients can check it.
    keystore_file: Path
    # The broker certificate's subject as Kafka prints it, e.g. "CN=broker": a super user.
    broker_subject: str
    # The SCRAM super user for set-up (topics, ACLs) and the readiness probe.
    admin_user: str
    admin_password: str
    # Further SCRAM-SHA-512 users, name to password, created when the storage is formatted
    # (so only on a fresh state dir; they pass through the format command line: test secrets).
    users: Mapping[str, str] = field(default_factory=dict)

    def server_properties(
        self, *, host: str, port: int, ssl_port: int, controller_port: int
    ) -> dict[str, str]:
        """The broker settings that turn this on."""
        return {
            "listeners": (
                f"SASL_SSL://{host}:{port},SSL://{host}:{ssl_port},"
                f"CONTROLLER://{host}:{controller_port}"
            ),
            "advertised.listeners": f"SASL_SSL://{host}:{port},SSL://{host}:{ssl_port}",
            "listener.security.protocol.map": "CONTROLLER:SSL,SSL:SSL,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name": "SSL",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_file),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            # Certificates are the identity on the SSL listeners (clients, broker, controller);
            # SASL_SSL clients authenticate with SCRAM instead.
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.controller.ssl.client.auth": "required",
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{self.broker_subject};User:{self.admin_user}",
        }

    def scram_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that create the SCRAM users."""
        arguments: list[str] = []
        for name, password in {self.admin_user: self.admin_password, **self.users}.items():
            for value in (name, password):
                if not value or not all(c.isalnum() or c in "-_." for c in value):
                    raise KafkaError(
                        f"SCRAM user {name!r}: names and passwords are letters, digits, '-_.'"
                    )
            arguments += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
        return arguments


def find_java() -> str:
    """Return the java executable from JAVA_HOME, else from PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise KafkaError("no java found: set JAVA_HOME or put a Java 17+ `java` on PATH")
    return found


class KafkaNode:
    """One KRaft broker+controller on 127.0.0.1, with its data under `state_dir`.

    Start with `start()` (sync) or `await astart()`, or use it as a (async) context manager.
    A node given no `state_dir` uses a temp dir that is removed on stop.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        partitions: int = 3,
        cache_dir: Path | str | None = None,
        heap: str = "512m",
        ready_timeout: float = 120.0,
        overrides: Mapping[str, str] | None = None,
        security: BrokerSecurity | None = None,
    ) -> None:
        self._owns_state_dir = state_dir is None
        self._state_dir_arg = Path(state_dir).resolve() if state_dir is not None else None
        self._state_dir: Path | None = self._state_dir_arg
        self._port = port
        self._controller_port = controller_port
        self.partitions = partitions
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.heap = heap
        self.ready_timeout = ready_timeout
        self._overrides = dict(overrides or {})
        self.security = security
        self._ssl_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.cold_start_seconds: float | None = None

    # -- public surface ------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """Return the node's state dir (data, config, log, pid file)."""
        if self._state_dir is None:
            raise KafkaError("KafkaNode has no state dir until it is started")
        return self._state_dir

    @property
    def port(self) -> int:
        """Return the PLAINTEXT listener port."""
        if self._port is None:
            raise KafkaError("KafkaNode has no port until it is started")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """Return ``127.0.0.1:PORT`` for Kafka clients."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def ssl_bootstrap_servers(self) -> str:
        """Return ``127.0.0.1:PORT`` of the mutual-TLS listener (a secured node only)."""
        if self.security is None or self._ssl_port is None:
            raise KafkaError("only a started node with BrokerSecurity has a mutual-TLS listener")
        return f"{LOOPBACK}:{self._ssl_port}"

    def admin_security(self) -> KafkaSecurity | None:
        """Client settings of the super user on `bootstrap_servers` (None: plain text)."""
        if self.security is None:
            return None
        password_file = self.state_dir / "admin.password"
        password_file.write_text(self.security.admin_password)
        password_file.chmod(0o600)
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=self.security.admin_user,
            sasl_password_file=password_file,
            ca_file=self.security.ca_file,
        )

    @property
    def log_path(self) -> Path:
        """Return the broker's stdout/stderr log file."""
        return self.state_dir / "kafka.log"

    @property
    def pid(self) -> int | None:
        """Return the broker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Tell whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> KafkaNode:
        """Format if needed, start the broker and block until it answers clients."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise KafkaError("KafkaNode.start() blocks; inside an event loop use `await astart()`")
        self._refuse_if_running()
        began = time.monotonic()
        try:
            self._launch()
            asyncio.run(self._wait_ready())
        except BaseException:
            self.stop()
            raise
        self.cold_start_seconds = time.monotonic() - began
        return self

    async def astart(self) -> KafkaNode:
        """Async `start()`: the JVM launch runs in a worker thread."""
        self._refuse_if_running()
        began = time.monotonic()
        try:
            await asyncio.to_thread(self._launch)
            await self._wait_ready()
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise
        self.cold_start_seconds = time.monotonic() - began
        return self

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the broker's process group, SIGKILL after `grace` s; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            atexit.unregister(self._stop_at_exit)
            _terminate_group(proc, grace)
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / "kafka.pid").unlink()
        if self._owns_state_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    async def astop(self, grace: float = 20.0) -> None:
        """Async `stop()`."""
        await asyncio.to_thread(self.stop, grace)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last `lines` lines of the broker log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (FileNotFoundError, KafkaError):
            return "(no broker log)"
        return _tail_text(text, lines)

    def __enter__(self) -> KafkaNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> KafkaNode:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    # -- launch ----------------------------------------------------------------------------

    def _refuse_if_running(self) -> None:
        if self.running:
            raise KafkaError(f"KafkaNode already running (pid {self.pid})")

    def _launch(self) -> None:
        """Resolve jars, write config, format storage once, and spawn the JVM."""
        classpath = os.pathsep.join(str(jar) for jar in resolve_jars(self._cache_dir))
        java = find_java()
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="xiezuo-kafka-"))
        state = self._state_dir
        state.mkdir(parents=True, exist_ok=True)
        config = state / "server.properties"
        _kill_stale_broker(state / "kafka.pid", config)
        self._choose_ports()
        data_dir = state / "data"
        overrides = dict(self._overrides)
        if self.security is not None:
            secured = self.security.server_properties(
                host=LOOPBACK,
                port=self.port,
                ssl_port=self._ssl_port or 0,
                controller_port=self._controller_port or 0,
            )
            overrides = {**secured, **overrides}
        config.write_text(
            render_server_properties(
                port=self.port,
                controller_port=self._controller_port or 0,
                log_dir=data_dir,
                partitions=self.partitions,
                overrides=overrides,
            )
        )
        if not (data_dir / "meta.properties").exists():
            self._format(java, classpath, config)
        jvm = [
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            *shlex.split(os.environ.get("XIEZUO_KAFKA_JAVA_OPTS", "")),
        ]
        cmd = [java, *jvm, "-cp", classpath, "kafka.Kafka", str(config)]
        with self.log_path.open("ab") as log:
            log.write(f"\n=== xiezuo: starting broker on {self.bootstrap_servers} ===\n".encode())
            log.flush()
            # Own session/process group: stop() signals the whole group, and a Ctrl-C aimed
            # at the parent's terminal does not kill the broker before a clean shutdown.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=state,
                start_new_session=True,
            )
        (state / "kafka.pid").write_text(f"{self._proc.pid}\n")
        atexit.register(self._stop_at_exit)

    def _choose_ports(self) -> None:
        """Use the configured ports, or pick free ones for whichever are unset."""
        for label, chosen in (("port", self._port), ("controller_port", self._controller_port)):
            if chosen is not None and not is_port_free(chosen):
                raise KafkaError(f"Kafka {label} {chosen} on {LOOPBACK} is already in use")
        # Ask for all at once so the picks cannot collide with each other.
        picked = iter(free_ports(2 if self.security is None else 3))
        if self._port is None:
            self._port = next(picked)
        if self._controller_port is None:
            self._controller_port = next(picked)
        if self.security is not None:
            self._ssl_port = next(picked)

    def _format(self, java: str, classpath: str, config: Path) -> None:
        """Format the log dir with a fresh cluster id (KRaft needs this once per dir)."""
        cmd = [
            java,
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            new_cluster_id(),
            "-c",
            str(config),
            *(self.security.scram_arguments() if self.security is not None else ()),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = _tail_text(result.stdout + result.stderr, 30)
            raise KafkaError(f"Kafka storage format failed ({result.returncode}):\n{output}")

    def _stop_at_exit(self) -> None:
        """Kill a broker whose owner forgot to stop it, so no JVM outlives the interpreter."""
        with contextlib.suppress(Exception):
            self.stop(grace=10.0)

    # -- readiness -------------------------------------------------------------------------

    async def _wait_ready(self) -> None:
        """Poll until the broker serves metadata and an acks=all write, or fail with its log."""
        deadline = time.monotonic() + self.ready_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise KafkaError(
                    f"Kafka broker exited early (code {self._exit_code()}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            # A plain TCP check first: aiokafka logs an ERROR per refused connection.
            if not await asyncio.to_thread(_accepts_tcp, self.port):
                await asyncio.sleep(0.2)
                continue
            try:
                await asyncio.wait_for(self._probe(), timeout=15.0)
                return
            except Exception as exc:
                last_error = exc
                await asyncio.sleep(0.3)
        raise KafkaError(
            f"Kafka broker on {self.bootstrap_servers} not ready after {self.ready_timeout:.0f} s"
            f" (last error: {last_error!r}); log {self.log_path}:\n{self.log_tail()}"
        )

    async def _probe(self) -> None:
        """Describe the cluster, then make one acks=all write to the probe topic."""
        admin_security = self.admin_security()
        access: dict[str, Any] = admin_security.client_kwargs() if admin_security else {}
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000, **access
        )
        await admin.start()
        try:
            await admin.describe_cluster()
            # Created explicitly: auto-creation on first send makes aiokafka warn "not found".
            if PROBE_TOPIC not in await admin.list_topics():
                await admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            request_timeout_ms=10000,
            **access,
        )
        await producer.start()
        try:
            await producer.send_and_wait(PROBE_TOPIC, b"ready", partition=0)
        finally:
            await producer.stop()

    def _exit_code(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None


def _accepts_tcp(port: int) -> bool:
    """Tell whether something accepts TCP connections on the loopback `port`."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def _terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group led by `proc`, then SIGKILL it after `timeout` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _kill_stale_broker(pid_file: Path, config: Path) -> None:
    """Stop a broker left running on this state dir by a crashed owner; it holds the dir lock."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    # Only a process running on this very config is ours; a recycled pid is left alone.
    if str(config).encode() in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    """Run a broker in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m services.runtime.localstack.kafka")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".state" / "kafka")
    parser.add_argument("--port", type=int, default=None, help="PLAINTEXT port (default: free)")
    parser.add_argument("--controller-port", type=int, default=None)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument(
        "--resolve-only", action="store_true", help="resolve the jars, print the classpath, exit"
    )
    args = parser.parse_args(argv)
    if args.resolve_only:
        print(os.pathsep.join(str(jar) for jar in resolve_jars(args.cache_dir)))
        return 0

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    node = KafkaNode(
        args.state_dir,
        port=args.port,
        controller_port=args.controller_port,
        partitions=args.partitions,
        cache_dir=args.cache_dir,
    )
    try:
        node.start()
        print(
            f"kafka ready on {node.bootstrap_servers} in {node.cold_start_seconds:.1f} s "
            f"(pid {node.pid}, log {node.log_path}); Ctrl-C stops",
            flush=True,
        )
        while node.running:
            time.sleep(0.5)
        print(f"kafka exited on its own; log tail:\n{node.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        node.stop()


if __name__ == "__main__":
    sys.exit(main())
