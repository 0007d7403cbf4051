"""The README's first command: `xiezuo up` brings Kafka and five services up, Ctrl-C stops all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.runtime.localstack import free_ports, is_port_free
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT
from tests.integration.helpers import eventually_sync

pytestmark = pytest.mark.kafka

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
UP_DEADLINE = 180.0


def _env(state: Path, ports: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(state)
    for index, service in enumerate(SERVICES):
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = str(ports[2 * index])
        env[f"XIEZUO_{service.upper()}_METRICS_PORT"] = str(ports[2 * index + 1])
    # The web console on a free port of its own (8080 may be taken by another run).
    env["XIEZUO_CONSOLE_HTTP_PORT"] = "0"
    env["XIEZUO_CONSOLE_METRICS_PORT"] = "0"
    return env


def _console_url(output: str) -> str:
    """The web console's address as `xiezuo up` printed it."""
    found = re.search(r"web console: (http://\S+/)", output)
    assert found, output[-3000:]
    return found.group(1)


def _groups(bootstrap: str) -> set[str]:
    async def listed() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return {group[0] for group in await admin.list_consumer_groups()}
        finally:
            await admin.close()

    return asyncio.run(listed())


def _ignore_sigint() -> None:
    # What a shell does to a command it starts in the background (`xiezuo up &`, CI runners).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_serves_four_healthy_services_and_ctrl_c_stops_everything(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    ports = free_ports(2 * len(SERVICES) + 1)
    kafka_port = ports.pop()
    env = _env(tmp_path / "state", ports)
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [str(XIEZUO), "up", "--kafka-port", str(kafka_port), "--no-demo"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        deadline = time.monotonic() + UP_DEADLINE
        while "Press Ctrl-C to stop" not in (tmp_path / "up.log").read_text(errors="replace"):
            assert up.poll() is None, (tmp_path / "up.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "xiezuo up was not ready in time"
            time.sleep(0.5)
        status = subprocess.run(
            [str(XIEZUO), "status", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stdout + status.stderr
        health = {row["service"]: row["health"] for row in json.loads(status.stdout)}
        assert health == dict.fromkeys(SERVICES, "SERVING")
        # The web console is up beside them, ready once every service answers SERVING.
        console = _console_url((tmp_path / "up.log").read_text(errors="replace"))
        assert httpx.get(f"{console}healthz", timeout=10).status_code == 200
        eventually_sync(
            lambda: True if httpx.get(f"{console}readyz", timeout=10).status_code == 200 else None,
            "the console ready",
        )
        signin = httpx.get(f"{console}sign-in", timeout=10)
        assert signin.status_code == 200 and 'data-person="p-004"' in signin.text
        # One deployment on its broker: every service in its default group (no prefix set).
        expected = {f"xiezuo-{service}" for service in SERVICES}
        eventually_sync(
            lambda: True if expected <= _groups(f"127.0.0.1:{kafka_port}") else None,
            "every service's default consumer group",
        )
    finally:
        # A person's Ctrl-C (even when the shell started `up` with SIGINT ignored), or a
        # supervisor's SIGTERM: both stop the services and Kafka in order.
        up.send_signal(stop_signal)
        try:
            code = up.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
    output = (tmp_path / "up.log").read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "stopped." in output
    leftovers = subprocess.run(
        ["pgrep", "-f", f"{tmp_path}/state"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], f"processes left running: {leftovers}"
    assert all(is_port_free(port) for port in [*ports, kafka_port])


def test_status_reports_unreachable_services_and_fails(tmp_path: Path) -> None:
    env = _env(tmp_path, free_ports(2 * len(SERVICES)))
    status = subprocess.run(
        [str(XIEZUO), "status", "--json", "--timeout", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 1
    rows = json.loads(status.stdout)
    assert [row["service"] for row in rows] == list(SERVICES)
    assert all(row["health"].startswith("UNREACHABLE") for row in rows)
