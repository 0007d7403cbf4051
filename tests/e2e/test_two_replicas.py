"""Two replicas of cases and of assessment on one database and one consumer group each.

Intake and staffing run once. Reports stream in; mid-stream one replica of cases and one of
assessment die by SIGKILL. Then: every clue exists once, assessment counted each exactly once,
each deadline notice fired once, and on every output topic each key's events appear in the
order the relays published them. The test prints what it measured (never asserts timings).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client.parser import text_string_to_metric_families
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.runtime.localstack import KafkaNode, PostgresCluster
from services.runtime.tokens import ensure_dev_keypair, mint_dev_token
from tests.e2e.conftest import (
    REPO_ROOT,
    ServiceProcess,
    _await_ready,
    _log_files,
    _stop,
    base_env,
)
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RUN = uuid.uuid4().hex[:8]
COUNTY = f"county-{RUN}"
ZONES = [f"zone-{RUN}-{index}" for index in range(4)]
REPORTS = 400
KILL_AFTER = 150
SUBMITTERS = 12
CALL_TIMEOUT = 15.0
SETTLE_DEADLINE = 240.0
# The services run under their real group names: a broker of their own (tests/conftest.py).
OWN_KAFKA_PARTITIONS = 6
TOPICS = ("xiezuo.intake.clues", "xiezuo.cases.deadlines")
APPROACHING = "xiezuo.cases.deadline_approaching.v1"
CLUE_REGISTERED = "xiezuo.intake.clue_registered.v1"


@dataclass
class Replicas:
    """The running processes, by service, and where their databases are."""

    state_dir: Path
    kafka_bootstrap: str
    urls: dict[str, str]
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def token(self) -> str:
        """An intake officer who may back-date a registration (补录), for every zone."""
        return mint_dev_token(
            key_dir=self.state_dir / "keys",
            subject="e2e-replicas",
            roles=["intake_officer", "back_entry"],
            county_id=COUNTY,
            zone_ids=["*"],
        )


async def _start_replica(
    name: str, replica: int, replicas: Replicas, log_dir: Path
) -> ServiceProcess:
    env = base_env(replicas.state_dir, replicas.kafka_bootstrap)
    prefix = f"XIEZUO_{name.upper()}_"
    env.update(
        {
            f"{prefix}DATABASE_URL": replicas.urls[name],
            f"{prefix}GRPC_PORT": "0",
            f"{prefix}METRICS_PORT": "0",
            # Deadlines are judged every second (the rows, not the timer, say what is due).
            "XIEZUO_CASES_DEADLINE_SCAN_SECONDS": "1",
            # A replica sees the other's outbox rows only by polling: poll often.
            "XIEZUO_OUTBOX_IDLE_POLL_SECONDS": "0.5",
        }
    )
    out_path = log_dir / f"{name}-{replica}.stdout"
    err_path = log_dir / f"{name}-{replica}.stderr"
    with _log_files(out_path, err_path) as (out, err):
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
    return ServiceProcess(name, process, out_path, err_path, replicas.urls[name])


@pytest.fixture(scope="module")
async def replicas(
    own_kafka: KafkaNode, postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Replicas]:
    """intake and staffing once, cases and assessment twice, all started at the same moment."""
    state_dir = tmp_path_factory.mktemp("replicas-state")
    log_dir = tmp_path_factory.mktemp("replicas-logs")
    ensure_dev_keypair(state_dir / "keys")
    names = ("intake", "staffing", "cases", "assessment")
    urls = {name: await postgres.acreate_database(f"e2e2_{name}_{RUN}") for name in names}
    running = Replicas(state_dir, own_kafka.bootstrap_servers, urls)
    plan = [("intake", 1), ("staffing", 1), ("cases", 1), ("cases", 2)]
    plan += [("assessment", 1), ("assessment", 2)]
    try:
        # All at once on fresh databases: the replicas migrate the same database together.
        started = await asyncio.gather(
            *(_start_replica(name, replica, running, log_dir) for name, replica in plan)
        )
        for process in started:
            running.processes.setdefault(process.name, []).append(process)
        outcomes = await asyncio.gather(
            *(_await_ready(process, 180.0) for process in started), return_exceptions=True
        )
        problems = [str(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
        if problems:
            pytest.fail("the replicas did not start:\n\n" + "\n\n".join(problems))
    except BaseException:
        await asyncio.gather(
            *(_stop(p, 30.0) for group in running.processes.values() for p in group)
        )
        raise
    yield running
    stopped = await asyncio.gather(
        *(_stop(p, 30.0) for group in running.processes.values() for p in group)
    )
    problems = [
        problem
        for problem in stopped
        # The killed replicas report a non-zero exit (-9): that is the test's doing.
        if problem and "code -9" not in problem
    ]
    assert not problems, "\n\n".join(problems)


def _report(index: int, registered_at: datetime) -> intake_pb2.SubmitReportRequest:
    zone = ZONES[index % len(ZONES)]
    request = intake_pb2.SubmitReportRequest(
        idempotency_key=f"replicas-{RUN}-{index}",
        county_id=COUNTY,
        zone_id=zone,
        township_id=f"township-{index % 3}",
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name=f"Official {index}",
            post="village party secretary",
            unit="Hexi village committee",
            township_id=f"township-{index % 3}",
            village="Hexi",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement"],
        content=f"Relief funds diverted, ledger entry {index}.",
    )
    stamp = Timestamp()
    stamp.FromDatetime(registered_at)
    request.registered_at.CopyFrom(stamp)
    return request


async def _query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await connection.fetch(sql, *args, timeout=CALL_TIMEOUT))
    finally:
        await connection.close()


async def _group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, member count) of a consumer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _error, _group, state, _protocol_type, _protocol, members, *_ = described[0].groups[0]
    return str(state), len(members)


async def _wait_members(bootstrap: str, group: str, members: int) -> float:
    """Seconds until `group` is Stable with exactly `members` members."""
    started = time.monotonic()

    async def probe() -> float | None:
        state, count = await _group_members(bootstrap, group)
        return time.monotonic() - started if (state, count) == ("Stable", members) else None

    return await eventually(probe, f"{group} stable with {members} members", within=SETTLE_DEADLINE)


def _metric_sum(url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(url, timeout=CALL_TIMEOUT) as reply:
        text = reply.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@dataclass(frozen=True)
class WireRecord:
    """One record seen on an output topic."""

    topic: str
    key: bytes
    event_id: str
    event_type: str
    payload: dict[str, Any]


async def _read_topics(bootstrap: str, expected: dict[str, int]) -> list[WireRecord]:
    """Every record on TOPICS, in partition order, until each topic has its expected ids."""
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=bootstrap,
        group_id=f"e2e-replicas-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[WireRecord] = []
    distinct: dict[str, set[str]] = defaultdict(set)
    try:
        until = time.monotonic() + SETTLE_DEADLINE
        while any(len(distinct[topic]) < count for topic, count in expected.items()):
            if time.monotonic() > until:
                pytest.fail(
                    f"output topics incomplete: { {t: len(v) for t, v in distinct.items()} }"
                )
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = {name: value.decode() for name, value in record.headers}
                    seen.append(
                        WireRecord(
                            record.topic,
                            record.key or b"",
                            headers["ce_id"],
                            headers["ce_type"],
                            json.loads(record.value or b"{}"),
                        )
                    )
                    distinct[record.topic].add(headers["ce_id"])
        # A little more, so late duplicates are seen too.
        for _ in range(4):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    headers = {name: value.decode() for name, value in record.headers}
                    seen.append(
                        WireRecord(
                            record.topic,
                            record.key or b"",
                            headers["ce_id"],
                            headers["ce_type"],
                            json.loads(record.value or b"{}"),
                        )
                    )
    finally:
        await consumer.stop()
    return seen


async def _publication_order(url: str) -> dict[str, tuple[datetime, int]]:
    """Each outbox row on TOPICS and its place in the relays' publication order."""

    async def published() -> list[asyncpg.Record] | None:
        rows = await _query(
            url,
            "SELECT event_id, id, published_at FROM outbox_message WHERE topic = ANY($1)",
            list(TOPICS),
        )
        return rows if all(row["published_at"] is not None for row in rows) else None

    rows = await eventually(published, "every outbox row published", within=SETTLE_DEADLINE)
    # Sorted by (published_at, id): each pass stamps its rows alike and sends them in id order.
    return {row["event_id"]: (row["published_at"], row["id"]) for row in rows}


def _out_of_order(
    wire: list[WireRecord], order: dict[str, tuple[datetime, int]]
) -> tuple[int, int]:
    """Per key, (first sightings out of publication order, of outbox-id order)."""
    first_seen: dict[bytes, list[str]] = defaultdict(list)
    known: set[str] = set()
    for record in wire:
        if record.event_id in order and record.event_id not in known:
            known.add(record.event_id)
            first_seen[record.key].append(record.event_id)
    by_publication = by_id = 0
    for ids in first_seen.values():
        places = [order[event_id] for event_id in ids]
        by_publication += sum(1 for a, b in itertools.pairwise(places) if a > b)
        by_id += sum(1 for a, b in itertools.pairwise(places) if a[1] > b[1])
    return by_publication, by_id


def _kill(process: ServiceProcess) -> None:
    """SIGKILL the replica's whole process group: no shutdown code runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.process.pid, signal.SIGKILL)


async def test_two_replicas_lose_nothing_and_apply_nothing_twice(replicas: Replicas) -> None:
    bootstrap = replicas.kafka_bootstrap
    joined = await asyncio.gather(
        _wait_members(bootstrap, "xiezuo-cases", 2),
        _wait_members(bootstrap, "xiezuo-assessment", 2),
    )
    # 27 days back: the one-month disposal limit falls due within days, so each clue's
    # deadline is already in its warning window and the scanners warn at once.
    registered_at = (datetime.now(UTC) - timedelta(days=27)).replace(microsecond=0)
    metadata = (("authorization", f"Bearer {replicas.token()}"),)
    clue_ids: dict[int, str] = {}
    killed = asyncio.Event()
    kill_moment: list[float] = []
    rebalances: list[asyncio.Task[float]] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(REPORTS):
        queue.put_nowait(index)

    async with grpc.aio.insecure_channel(replicas.processes["intake"][0].grpc) as channel:
        intake = intake_pb2_grpc.IntakeServiceStub(channel)

        async def submitter() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                reply = await intake.SubmitReport(
                    _report(index, registered_at), metadata=metadata, timeout=CALL_TIMEOUT
                )
                clue_ids[index] = reply.clue_id
                if len(clue_ids) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    kill_moment.append(time.monotonic())
                    _kill(replicas.processes["cases"][0])
                    _kill(replicas.processes["assessment"][0])
                    # Watched from the kill on: how long until each group is one member.
                    rebalances.extend(
                        asyncio.create_task(_wait_members(bootstrap, group, 1))
                        for group in ("xiezuo-cases", "xiezuo-assessment")
                    )

        streaming_started = time.monotonic()
        await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))
        streamed_in = time.monotonic() - streaming_started

    assert killed.is_set() and len(clue_ids) == REPORTS
    rebalance = await asyncio.gather(*rebalances)
    cases_url, assessment_url = replicas.urls["cases"], replicas.urls["assessment"]
    intake_url = replicas.urls["intake"]

    async def all_clues() -> list[asyncpg.Record] | None:
        rows = await _query(cases_url, "SELECT clue_id, count(*) AS n FROM clue GROUP BY clue_id")
        return rows if len(rows) >= REPORTS else None

    async def all_warned() -> int | None:
        rows = await _query(
            cases_url,
            "SELECT count(*) FROM outbox_message "
            "WHERE event_type = $1 AND published_at IS NOT NULL",
            APPROACHING,
        )
        return rows[0][0] if rows[0][0] >= REPORTS else None

    async def all_counted() -> int | None:
        rows = await _query(
            assessment_url,
            "SELECT coalesce(sum(value), 0) FROM kpi_tally "
            "WHERE county_id = $1 AND level = 'zone' AND kpi = 'clues_received'",
            COUNTY,
        )
        return int(rows[0][0]) if int(rows[0][0]) >= REPORTS else None

    clue_rows = await eventually(all_clues, "every clue in cases", within=SETTLE_DEADLINE)
    await eventually(all_warned, "every disposal deadline warned", within=SETTLE_DEADLINE)
    await eventually(all_counted, "every clue counted by assessment", within=SETTLE_DEADLINE)
    settled_after_kill = time.monotonic() - kill_moment[0]

    # Nothing lost, nothing twice: each reported clue once in cases, and nothing else.
    assert {row["clue_id"] for row in clue_rows} == set(clue_ids.values())
    assert all(row["n"] == 1 for row in clue_rows)
    inbox = await _query(
        cases_url,
        "SELECT count(*), count(DISTINCT event_id) FROM inbox_entry WHERE event_type = $1",
        CLUE_REGISTERED,
    )
    assert tuple(inbox[0]) == (REPORTS, REPORTS)
    counted = await _query(
        assessment_url,
        "SELECT kpi, level, sum(value) FROM kpi_tally WHERE county_id = $1 "
        "AND kpi = 'clues_received' GROUP BY kpi, level ORDER BY level",
        COUNTY,
    )
    per_level = {row["level"]: int(row[2]) for row in counted}
    assert per_level["zone"] == REPORTS, per_level
    contributions = await _query(
        assessment_url,
        "SELECT count(DISTINCT event_id) FROM kpi_contribution WHERE kpi = 'clues_received'",
    )
    assert contributions[0][0] == REPORTS

    # Each deadline notice fired once: one notice row and one event per deadline.
    notices = await _query(
        cases_url, "SELECT deadline_id, notice FROM case_deadline_notice ORDER BY deadline_id"
    )
    assert len(notices) == REPORTS
    assert all(row["notice"] == "approaching" for row in notices)

    # On the wire: every event, each deadline warned by one event id, each key in order.
    intake_order = await _publication_order(intake_url)
    cases_order = await _publication_order(cases_url)
    wire = await _read_topics(
        bootstrap, {"xiezuo.intake.clues": len(intake_order), "xiezuo.cases.deadlines": REPORTS}
    )
    warnings = [record for record in wire if record.event_type == APPROACHING]
    ids_per_deadline: dict[str, set[str]] = defaultdict(set)
    for record in warnings:
        ids_per_deadline[record.payload["deadline_id"]].add(record.event_id)
    assert len(ids_per_deadline) == REPORTS
    fired_twice = {deadline: ids for deadline, ids in ids_per_deadline.items() if len(ids) > 1}
    assert not fired_twice, f"deadline notices fired more than once: {fired_twice}"
    approaching_rows = await _query(
        cases_url, "SELECT event_id FROM outbox_message WHERE event_type = $1", APPROACHING
    )
    assert {record.event_id for record in warnings} == {row[0] for row in approaching_rows}
    assert len(approaching_rows) == REPORTS
    cases_wire = [record for record in wire if record.event_id in cases_order]
    intake_wire = [record for record in wire if record.event_id in intake_order]
    cases_by_publication, cases_by_id = _out_of_order(cases_wire, cases_order)
    intake_by_publication, intake_by_id = _out_of_order(intake_wire, intake_order)
    assert cases_by_publication == 0, "a key's events reached Kafka out of publication order"
    assert intake_by_publication == 0, "a key's events reached Kafka out of publication order"
    # Only the scanners write cases' outbox here, one notice transaction at a time across the
    # replicas: ids follow commit order, so each zone's notices are also in outbox-id order.
    assert cases_by_id == 0, "a zone's deadline notices reached Kafka out of outbox-id order"

    # Settled, and still exactly once: nothing came in twice while the topics were read.
    assert await all_counted() == REPORTS
    assert len(await _query(cases_url, "SELECT 1 FROM case_deadline_notice")) == REPORTS

    wire_copies = Counter(record.event_id for record in wire)
    duplicates_on_wire = sum(copies - 1 for copies in wire_copies.values())
    survivors = [replicas.processes["cases"][1], replicas.processes["assessment"][1]]
    dropped = sum(
        _metric_sum(process.metrics, "xiezuo_events_consumed_total", outcome="duplicate")
        for process in survivors
    )
    measured = {
        "reports": REPORTS,
        "zones (keys)": len(ZONES),
        "streamed_in_seconds": round(streamed_in, 1),
        "replicas_joined_seconds": [round(seconds, 1) for seconds in joined],
        "kills": {"cases": 1, "assessment": 1, "after_reports": KILL_AFTER},
        "rebalance_seconds_after_kill": {
            "cases": round(rebalance[0], 1),
            "assessment": round(rebalance[1], 1),
        },
        "settled_seconds_after_kill": round(settled_after_kill, 1),
        "clues_in_cases": len(clue_rows),
        "assessment_clues_received_by_level": per_level,
        "deadline_notices": len(notices),
        "wire_records": len(wire),
        "duplicates_on_wire": duplicates_on_wire,
        "duplicates_dropped_by_surviving_consumers": int(dropped),
        "per_key_out_of_publication_order": cases_by_publication + intake_by_publication,
        "per_key_out_of_outbox_id_order": {"cases": cases_by_id, "intake": intake_by_id},
    }
    print("\ntwo-replica run measured:", json.dumps(measured, indent=2))
    print("warnings and errors the replicas logged:", json.dumps(_complaints(replicas), indent=2))


def _complaints(replicas: Replicas) -> dict[str, int]:
    """How often each replica logged each warning or error (retries, deadlocks, failures)."""
    found: Counter[str] = Counter()
    for name, group in replicas.processes.items():
        for replica, process in enumerate(group, start=1):
            for line in process.stderr_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and entry.get("level") in ("WARNING", "ERROR"):
                        found[f"{name}-{replica}: {str(entry.get('message'))[:120]}"] += 1
    return dict(found.most_common())
