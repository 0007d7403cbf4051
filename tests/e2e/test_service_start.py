"""A service started before Kafka waits NOT_SERVING, then serves once a fresh broker is up.

The broker is a fresh one started by the test, so the start also crosses the seconds in which
it elects a group coordinator: none of that may be logged at ERROR.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import BinaryIO

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.localstack import KafkaNode, free_port
from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.kafka
WITHIN = 120.0


def _lines(path: Path) -> list[dict[str, object]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            found.append(message)
    return found


async def _wait_for(path: Path, key: str, process: asyncio.subprocess.Process) -> dict[str, str]:
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        for message in _lines(path):
            value = message.get(key)
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
        assert process.returncode is None, f"service exited with {process.returncode}"
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {key!r} line within {WITHIN:.0f} s")


def _log_file(path: Path) -> BinaryIO:
    # Files, not pipes: a chatty service can never block on a full pipe nobody reads.
    return open(path, "wb")


async def _health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        return int(reply.status)


async def test_a_service_waits_for_kafka_and_logs_no_error(tmp_path: Path) -> None:
    kafka_port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("XIEZUO_", "OTEL_"))
    }
    env.update(
        XIEZUO_STATE_DIR=str(tmp_path / "state"),
        XIEZUO_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka_port}",
        XIEZUO_CASES_GRPC_PORT="0",
        XIEZUO_CASES_METRICS_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    stdout, stderr = tmp_path / "cases.stdout", tmp_path / "cases.stderr"
    out, err = _log_file(stdout), _log_file(stderr)
    with out, err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli.main",
            "serve",
            "cases",
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    node: KafkaNode | None = None
    try:
        starting = await _wait_for(stdout, "starting", process)
        assert await _health(starting["grpc"]) == health_pb2.HealthCheckResponse.NOT_SERVING

        async def retried_twice() -> bool:
            waits = [
                line
                for line in _lines(stderr)
                if str(line.get("message", "")).startswith("Kafka not reachable yet")
            ]
            return len(waits) >= 2

        deadline = time.monotonic() + WITHIN
        while not await retried_twice():
            assert process.returncode is None, f"service exited with {process.returncode}"
            assert time.monotonic() < deadline, "no retry logged"
            await asyncio.sleep(0.2)
        assert await _health(starting["grpc"]) == health_pb2.HealthCheckResponse.NOT_SERVING

        node = KafkaNode(tmp_path / "kafka", port=kafka_port, partitions=1)
        await node.astart()
        ready = await _wait_for(stdout, "ready", process)
        assert ready["grpc"] == starting["grpc"]
        assert await _health(ready["grpc"]) == health_pb2.HealthCheckResponse.SERVING
        # Long enough for the consumer group to join on the fresh broker (the noisy part).
        await asyncio.sleep(8)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 60)
        finally:
            if node is not None:
                await node.astop()
    assert process.returncode == 0, stderr.read_text(errors="replace")[-3000:]
    logged = _lines(stderr)
    waits = [line for line in logged if str(line.get("message", "")).startswith("Kafka not")]
    assert waits and all(line["level"] == "WARNING" for line in waits)
    errors = [line for line in logged if line.get("level") in ("ERROR", "CRITICAL")]
    assert errors == [], errors
