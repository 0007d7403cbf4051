"""examples/consumer against the real platform: its per-zone tally equals assessment's.

`xiezuo up` replays a small demo year while the example consumer (its own process, its own
group) reads the broker; afterwards every record on every Xiezuo topic names a `dataschema`
that is a file in this repository and validates the record's payload.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.runtime.localstack import free_ports
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.kafka

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
EXAMPLE = REPO_ROOT / "examples" / "consumer" / "zone_tally.py"
DEMO_DEADLINE = 420.0
CONVERGE_DEADLINE = 180.0
REPORTS = 30


def _env(state: Path, ports: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(state)
    for index, service in enumerate(SERVICES):
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = str(ports[2 * index])
        env[f"XIEZUO_{service.upper()}_METRICS_PORT"] = str(ports[2 * index + 1])
    # The web console `up` starts, on free ports (8080/9106 may be taken by another run).
    env["XIEZUO_CONSOLE_HTTP_PORT"] = "0"
    env["XIEZUO_CONSOLE_METRICS_PORT"] = "0"
    return env


def _assessment_tally(state: Path) -> dict[str, dict[str, int]]:
    """Assessment's all-quarter zone counts of the two KPIs the example keeps."""
    database = state / "db" / "assessment.sqlite3"
    if not database.exists():
        return {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT subject_id, kpi, SUM(value) FROM kpi_tally WHERE level = 'zone' "
            "AND kpi IN ('clues_received', 'deadlines_breached') GROUP BY subject_id, kpi"
        ).fetchall()
    tally: dict[str, dict[str, int]] = {}
    for zone, kpi, value in rows:
        what = "clues" if kpi == "clues_received" else "deadlines_breached"
        tally.setdefault(zone, {"clues": 0, "deadlines_breached": 0})[what] = int(value)
    return tally


def _example_tally(path: Path) -> tuple[dict[str, dict[str, int]], bool, list[Any]]:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, False, []
    return saved["zones"], saved["caught_up"], saved["unreadable"]


async def _every_record(bootstrap: str) -> list[Any]:
    """Every record on every xiezuo.* topic, read from the beginning without a group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if t.startswith("xiezuo."))
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    assert partitions, topics
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while True:
            behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not behind:
                return records
            batch = await consumer.getmany(*behind, timeout_ms=1000)
            for found in batch.values():
                records.extend(found)
    finally:
        await consumer.stop()


def _check_dataschemas(records: list[Any]) -> int:
    """Each record's ce_dataschema names a repo file its payload validates against."""
    checked = 0
    schemas: dict[str, dict[str, Any]] = {}
    for record in records:
        headers = {name: value.decode() for name, value in record.headers}
        if "ce_type" not in headers:
            continue  # not a CloudEvent (e.g. a readiness probe)
        if record.topic.endswith(".dead-letter"):
            continue  # copies of records that failed elsewhere, checked at their origin
        uri = headers.get("ce_dataschema", "")
        assert uri == f"xiezuo:schemas/events/{headers['ce_type']}.json", (record.topic, headers)
        if uri not in schemas:
            path = REPO_ROOT / uri.removeprefix("xiezuo:")
            assert path.is_file(), uri
            schemas[uri] = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(
            json.loads(record.value), schemas[uri], cls=jsonschema.Draft202012Validator
        )
        checked += 1
    return checked


def test_the_example_consumer_tallies_what_assessment_counts(tmp_path: Path) -> None:
    ports = free_ports(2 * len(SERVICES) + 1)
    kafka_port = ports.pop()
    bootstrap = f"127.0.0.1:{kafka_port}"
    state = tmp_path / "state"
    env = _env(state, ports)
    up_log = tmp_path / "up.log"
    tally_path = tmp_path / "zone-tally.json"
    up = subprocess.Popen(
        [str(XIEZUO), "up", "--kafka-port", str(kafka_port), "--demo-reports", str(REPORTS)],
        env=env,
        stdout=up_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Started with the platform, so it reads while the demo runs (and waits for the broker).
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--bootstrap", bootstrap, "--state", str(tally_path)],
        stdout=(tmp_path / "example.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEMO_DEADLINE
        while "Press Ctrl-C to stop" not in up_log.read_text(errors="replace"):
            assert up.poll() is None, up_log.read_text(errors="replace")[-3000:]
            assert example.poll() is None, (tmp_path / "example.log").read_text()[-3000:]
            assert time.monotonic() < deadline, up_log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        # Both read the same records at their own pace: wait until they agree.
        deadline = time.monotonic() + CONVERGE_DEADLINE
        while True:
            theirs, caught_up, unreadable = _example_tally(tally_path)
            ours = _assessment_tally(state)
            if caught_up and theirs and theirs == ours:
                break
            assert time.monotonic() < deadline, {"example": theirs, "assessment": ours}
            time.sleep(1.0)
        print("example consumer tally:", json.dumps(theirs, sort_keys=True))
        assert unreadable == []
        assert sorted(theirs) == [f"z-{n}" for n in range(1, 7)]
        assert sum(zone["clues"] for zone in theirs.values()) == REPORTS
        checked = _check_dataschemas(asyncio.run(_every_record(bootstrap)))
        assert checked > REPORTS, checked
        print(f"dataschema checked on {checked} records")
    finally:
        for process in (example, up):
            process.send_signal(signal.SIGINT)
        for process in (example, up):
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise
