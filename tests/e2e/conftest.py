"""The four services as real OS processes on the session's Kafka node and PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from services.runtime.localstack import KafkaNode, PostgresCluster
from services.runtime.settings import SERVICES
from services.runtime.tokens import ensure_dev_keypair, mint_dev_token
from tests.e2e.otlp_collector import OtlpCollector

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
# Inherited settings that would change what the services under test do.
_KEEP_ENV_PREFIXES = ("XIEZUO_PG_",)
# Export batches every 200 ms (default 5 s) so a test sees a request's spans soon after.
SPAN_EXPORT_DELAY_MS = "200"


@dataclass
class ServiceProcess:
    """One running `xiezuo serve <service>` and where to reach it."""

    name: str
    process: asyncio.subprocess.Process
    stdout_path: Path
    stderr_path: Path
    database_url: str
    grpc: str = ""
    metrics: str = ""

    def stderr_tail(self, lines: int = 40) -> str:
        """The last lines the service logged."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty stderr)"

    def logs(self) -> bytes:
        """Everything the service wrote to stdout and stderr so far."""
        return self.stdout_path.read_bytes() + self.stderr_path.read_bytes()


@dataclass
class Stack:
    """The running platform: addresses, databases, and a token minting helper."""

    state_dir: Path
    kafka_bootstrap: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def key_dir(self) -> Path:
        """Where the dev signing key the services trust lives."""
        return self.state_dir / "keys"

    def grpc(self, service: str) -> str:
        """host:port of a service's gRPC server."""
        return self.services[service].grpc

    def metrics(self, service: str) -> str:
        """URL of a service's /metrics."""
        return self.services[service].metrics

    def database_url(self, service: str) -> str:
        """SQLAlchemy URL of a service's database."""
        return self.services[service].database_url

    def token(
        self,
        *,
        roles: Iterable[str],
        county_id: str,
        zone_ids: Iterable[str] = (),
        subject: str = "e2e-officer",
    ) -> str:
        """A bearer token signed by the key the services verify against."""
        return mint_dev_token(
            key_dir=self.key_dir,
            subject=subject,
            roles=roles,
            county_id=county_id,
            zone_ids=zone_ids,
        )

    def cli_env(self, service: str) -> dict[str, str]:
        """Environment for a `xiezuo` CLI command against one service's database."""
        env = base_env(self.state_dir, self.kafka_bootstrap)
        env[f"XIEZUO_{service.upper()}_DATABASE_URL"] = self.database_url(service)
        return env


def base_env(state_dir: Path, kafka_bootstrap: str) -> dict[str, str]:
    """The parent's environment minus stray XIEZUO_* and OTEL_* settings, plus the stack's own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("XIEZUO_", "OTEL_")) or name.startswith(_KEEP_ENV_PREFIXES)
    }
    env.update(
        XIEZUO_STATE_DIR=str(state_dir),
        XIEZUO_KAFKA_BOOTSTRAP=kafka_bootstrap,
        PYTHONUNBUFFERED="1",
    )
    return env


async def _start(
    name: str,
    state_dir: Path,
    kafka_bootstrap: str,
    database_url: str,
    log_dir: Path,
    otlp_endpoint: str,
) -> ServiceProcess:
    env = base_env(state_dir, kafka_bootstrap)
    prefix = f"XIEZUO_{name.upper()}_"
    env.update(
        {
            f"{prefix}DATABASE_URL": database_url,
            f"{prefix}GRPC_PORT": "0",
            f"{prefix}METRICS_PORT": "0",
            "XIEZUO_OTLP_ENDPOINT": otlp_endpoint,
            # Off by default (their cost); test_tracing follows a report into the statements.
            "XIEZUO_SQL_SPANS": "true",
            "OTEL_BSP_SCHEDULE_DELAY": SPAN_EXPORT_DELAY_MS,
        }
    )
    stdout_path, stderr_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    # Files, not pipes: a chatty service can never block on a full pipe nobody reads.
    with _log_files(stdout_path, stderr_path) as (out, err):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli.main",
            "serve",
            name,
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return ServiceProcess(name, process, stdout_path, stderr_path, database_url)


@contextlib.contextmanager
def _log_files(*paths: Path) -> Iterator[list[IO[bytes]]]:
    with contextlib.ExitStack() as files:
        yield [files.enter_context(open(path, "wb")) for path in paths]


def _ready_line(stdout_path: Path) -> dict[str, str] | None:
    for line in stdout_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and isinstance(message.get("ready"), dict):
                ready: dict[str, str] = message["ready"]
                return ready
    return None


async def _await_ready(service: ServiceProcess, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        ready = _ready_line(service.stdout_path)
        if ready is not None:
            assert ready.get("service") == service.name, ready
            service.grpc, service.metrics = ready["grpc"], ready["metrics"]
            return
        if service.process.returncode is not None:
            pytest.fail(
                f"{service.name} exited with code {service.process.returncode} before it was "
                f"ready; stderr tail:\n{service.stderr_tail()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"{service.name} printed no ready line within {within:.0f} s; "
                f"stderr tail:\n{service.stderr_tail()}"
            )
        await asyncio.sleep(0.1)


async def _stop(service: ServiceProcess, within: float) -> str | None:
    """SIGTERM the service and wait; a problem description, or None for a clean exit 0."""
    process = service.process
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return (
            f"{service.name} did not stop within {within:.0f} s of SIGTERM (killed); "
            f"stderr tail:\n{service.stderr_tail()}"
        )
    if process.returncode != 0:
        return (
            f"{service.name} exited with code {process.returncode} after SIGTERM; "
            f"stderr tail:\n{service.stderr_tail()}"
        )
    return None


@pytest.fixture(scope="session")
def otlp_collector() -> Iterator[OtlpCollector]:
    """The OTLP/gRPC endpoint every service of the stack exports its spans to."""
    collector = OtlpCollector()
    collector.start()
    try:
        yield collector
    finally:
        # After the stack (which depends on it) has stopped and flushed its last spans.
        collector.stop()


@pytest.fixture(scope="session")
async def stack(
    kafka: KafkaNode,
    postgres: PostgresCluster,
    otlp_collector: OtlpCollector,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """Start intake, cases, staffing and assessment; stop them gracefully afterwards."""
    state_dir = tmp_path_factory.mktemp("xiezuo-state")
    log_dir = tmp_path_factory.mktemp("xiezuo-logs")
    # Created once up front so four processes starting together never race to create it.
    ensure_dev_keypair(state_dir / "keys")
    run = uuid.uuid4().hex[:8]
    urls = {name: await postgres.acreate_database(f"e2e_{name}_{run}") for name in SERVICES}
    running = Stack(state_dir=state_dir, kafka_bootstrap=kafka.bootstrap_servers)
    try:
        for name in SERVICES:
            running.services[name] = await _start(
                name,
                state_dir,
                kafka.bootstrap_servers,
                urls[name],
                log_dir,
                otlp_collector.endpoint,
            )
        outcomes = await asyncio.gather(
            *(_await_ready(service, READY_TIMEOUT) for service in running.services.values()),
            return_exceptions=True,
        )
        problems = [str(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
        if problems:
            pytest.fail("the stack did not start:\n\n" + "\n\n".join(problems))
    except BaseException:
        await asyncio.gather(
            *(_stop(service, STOP_TIMEOUT) for service in running.services.values())
        )
        raise
    yield running
    stopped = await asyncio.gather(
        *(_stop(service, STOP_TIMEOUT) for service in running.services.values())
    )
    failures = [problem for problem in stopped if problem]
    assert not failures, "\n\n".join(failures)
