"""The whole pipeline under open-loop load: intake → Kafka → cases and assessment, step by step.

Run: ``.venv/bin/python bench/pipeline.py [--steps 10,25,50,100,200,500,1000,2000]
[--step-seconds 20] [--postgres] [--json]``; ``--growth`` and ``--consumer-only`` are the other
two modes (``--help`` lists every option). Never asserts timings: it prints numbers.

What it does (default mode):

1. Starts its own stack in a temp dir: a KRaft Kafka node (``KafkaNode``), then the four
   services as ``xiezuo serve <service>`` processes, exactly as ``xiezuo up`` does, on SQLite
   (or, with ``--postgres``, a private ``PostgresCluster`` with one database per service).
2. Measures the bus ceiling on that broker with ``bench/bus_ceiling.py``'s own code, before the
   services take any load.
3. Loads the demo county with ``xiezuo staffing import deploy/demo/county.yaml`` (as the first-run
   demo does), and waits until intake routes a report of it.
4. Offers SubmitReport calls open-loop at each step's rate (a call is sent when it is due,
   whether or not earlier ones have returned), with reports drawn from the demo's scenario
   generator, signed with a dev token like the CLI's.
5. Watches without touching the services: a group-less consumer reads ``ClueRegistered`` off
   ``xiezuo.intake.clues`` (which offset carries which report), and the committed offsets of the
   cases and assessment consumer groups are polled (every ``--offset-poll-ms``): a report's
   clue is "in cases" (or "counted by assessment") from the first poll at which that group has
   committed past the record, because a consumer commits only after its transaction.
   These end-to-end times are measured from when the call was sent and are late by up to one
   poll interval.

Per step it prints the offered and accepted rate, SubmitReport p50/p99, time to the bus, into
cases and counted by assessment (p50/p99), every consumer group's lag at the end of the
step and its trend, and CPU % and RSS of every process (Kafka, each service, PostgreSQL, this
benchmark, the whole machine) with each process's run-queue wait (ready to run, no CPU free:
what other work on a shared machine costs it). A step *holds* when at least 95 % of the
offered calls were accepted, SubmitReport p99 ≤ ``--target-p99-ms`` and no group's lag grew;
stepping stops after a step that clearly fails (p99 over 4× the target, or under 80 %
accepted). The result is the highest step that held and its ratio to the bus ceiling
(messages/s produced).

``--growth`` repeats one step (``--growth-rate``) on a fresh stack with 0 / 10,000 / 100,000
reports already stored in intake (``--growth-stored``). The stored reports are written
directly into intake's database, not through the API (which would take hours at today's
rate): the database is migrated to ``intake_0006``, the rows are inserted at that schema, then
it is migrated to head, so later migrations' backfills index them as they would real rows.
Each stored report's ClueRegistered is published to the clues topic before the services
start (as intake's relay once did), and the step waits until cases and assessment have applied
them: a new report linked to a stored clue then names a clue cases knows. (Seeding intake alone
made every such ReportLinked name a clue cases had never seen: retried, backed off and
dead-lettered, each stalling cases' consumer for ~0.6 s, which read as cases slowing with
history; bench/cases_growth.py measures it.) The deadline scanner is held off during growth
runs: in a seeded history nobody disposed of any clue, so its first pass would breach every
stored clue older than the disposal limit at once; its own cost is bench/deadline_scan.py's.

``--consumer-only`` measures how fast each consumer applies a backlog: with cases and
assessment stopped, ``--events`` ClueRegistered events are published to their topic, then each
service is started alone and timed from its first commit until its group has caught up.

To measure another checkout (e.g. an older commit), run that tree's copy of this file with
``PYTHONPATH=<tree>:<tree>/gen/python``; the services are started from the tree this file is in.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import ctypes
import functools
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import asyncpg
import bus_ceiling
import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.contracts.intake import CLUES_TOPIC, ClueRegistered, ReportedSubject
from services.demo.county import DEMO_COUNTY_FILE, load_county_plan
from services.demo.requests import submit_request
from services.demo.scenario import CountyPlan, ScriptedReport, generate_scenario
from services.runtime.envelope import Envelope
from services.runtime.ids import time_ordered_uuid
from services.runtime.localstack import KafkaError, KafkaNode, PostgresCluster, PostgresError
from services.runtime.settings import SERVICES, PlatformSettings
from services.runtime.tokens import ALL_ZONES, mint_dev_token

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 180.0
STOP_SECONDS = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The schema the growth mode's stored reports are written at; later migrations carry them on.
SEED_REVISION = "intake_0006"
CLUE_REGISTERED = ClueRegistered.event_type.encode()


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the results."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def group_of(service: str) -> str:
    """The Kafka consumer group (and inbox name) of a service."""
    return f"xiezuo-{service}"


# -- processes -------------------------------------------------------------------------------


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: a benchmark killed outright must not leave services running.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Service:
    """One `xiezuo serve <name>` process and where it answers."""

    name: str
    database_url: str
    log_dir: Path
    process: asyncio.subprocess.Process | None = None
    grpc: str = ""
    starts: int = 0

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.starts}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.starts}.stderr"

    def stderr_tail(self, lines: int = 25) -> str:
        """The last lines the service logged."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty stderr)"


class Stack:
    """Kafka, optionally PostgreSQL, and the four services, all under one temp dir."""

    def __init__(self, work: Path, *, postgres: bool, seed_reports: int = 0) -> None:
        self.work = work
        # Settings the services of this stack get beside the defaults (XIEZUO_...).
        self.extra_env: dict[str, str] = {}
        self.state_dir = work / "state"
        self.log_dir = work / "logs"
        self.postgres = postgres
        self.seed_reports = seed_reports
        self.node: KafkaNode | None = None
        self.cluster: PostgresCluster | None = None
        self.services: dict[str, Service] = {}
        self.seed_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        assert self.node is not None
        return self.node.bootstrap_servers

    def env(self) -> dict[str, str]:
        """The parent's environment without stray XIEZUO_* settings, plus the stack's own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XIEZUO_", "OTEL_"))}
        paths = [str(ROOT), str(ROOT / "gen" / "python")]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        env.update(
            XIEZUO_STATE_DIR=str(self.state_dir),
            XIEZUO_KAFKA_BOOTSTRAP=self.bootstrap,
            PYTHONPATH=os.pathsep.join(paths),
            PYTHONUNBUFFERED="1",
        )
        if "XIEZUO_CACHE_DIR" in os.environ:
            env["XIEZUO_CACHE_DIR"] = os.environ["XIEZUO_CACHE_DIR"]
        for service in self.services.values():
            env[f"XIEZUO_{service.name.upper()}_DATABASE_URL"] = service.database_url
        env.update(self.extra_env)
        return env

    async def start_broker(self) -> None:
        """The Kafka node alone (the bus ceiling runs on it before the services start)."""
        self.state_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True)
        log("starting Kafka ...")
        self.node = KafkaNode(self.work / "kafka", heap="1g")
        await self.node.astart()
        log(f"Kafka on {self.bootstrap} (cold start {self.node.cold_start_seconds or 0:.1f} s)")

    async def start_services(self) -> None:
        """Databases (seeded when asked), then the services; ready when this returns."""
        if self.postgres:
            log("starting PostgreSQL ...")
            # Its own temp dir: ours is private (0700) and the server may run as another user.
            self.cluster = PostgresCluster()
            await self.cluster.astart()
        for name in SERVICES:
            if self.cluster is not None:
                url = await self.cluster.acreate_database(f"{name}_bench")
            else:
                url = f"sqlite+aiosqlite:///{self.state_dir / 'db' / f'{name}.sqlite3'}"
            self.services[name] = Service(name, url, self.log_dir)
        (self.state_dir / "db").mkdir()
        if self.seed_reports:
            started = time.monotonic()
            log(f"storing {self.seed_reports} reports in intake directly (schema {SEED_REVISION})")
            stored = await seed_intake(self.services["intake"].database_url, self.seed_reports)
            published = await publish_stored_clues(self.bootstrap, stored)
            self.seed_seconds = time.monotonic() - started
            log(
                f"stored in {self.seed_seconds:.0f} s (migrated to head; {published} "
                "ClueRegistered published for cases and assessment)"
            )
        for name in SERVICES:
            await self.start_service(name, wait=False)
        for name in SERVICES:
            await self.await_ready(name)
        log("services ready: " + ", ".join(f"{s.name} {s.grpc}" for s in self.services.values()))

    async def start_service(self, name: str, *, wait: bool = True) -> None:
        """Start one service process (again); with `wait`, until it printed its ready line."""
        service = self.services[name]
        service.starts += 1
        env = self.env()
        env[f"XIEZUO_{name.upper()}_GRPC_PORT"] = "0"
        env[f"XIEZUO_{name.upper()}_METRICS_PORT"] = "0"
        # Files, not pipes: a chatty service must never block on a pipe nobody reads.
        with service.stdout_path.open("wb") as out, service.stderr_path.open("wb") as err:
            service.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli.main",
                "serve",
                name,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                # Own session: a Ctrl-C at the terminal reaches only us; we stop them in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        if wait:
            await self.await_ready(name)

    async def await_ready(self, name: str) -> None:
        """Wait for the service's ready line; fail with its log tail if it dies or hangs."""
        service = self.services[name]
        assert service.process is not None
        deadline = time.monotonic() + READY_SECONDS
        while True:
            for line in service.stdout_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if isinstance(message, dict) and isinstance(message.get("ready"), dict):
                        service.grpc = message["ready"]["grpc"]
                        return
            if service.process.returncode is not None:
                raise BenchError(
                    f"{name} exited with code {service.process.returncode} before it was "
                    f"ready; its log ends:\n{service.stderr_tail()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{name} not ready in {READY_SECONDS:.0f} s:\n{service.stderr_tail()}"
                )
            await asyncio.sleep(0.1)

    async def stop_service(self, name: str) -> None:
        """SIGTERM, then SIGKILL after STOP_SECONDS; idempotent."""
        service = self.services.get(name)
        if service is None or service.process is None:
            return
        process, service.process = service.process, None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                log(f"{name} did not stop in {STOP_SECONDS:.0f} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    def check_alive(self) -> None:
        """Fail loudly when a service died under load."""
        for service in self.services.values():
            if service.process is not None and service.process.returncode is not None:
                raise BenchError(
                    f"{service.name} exited with code {service.process.returncode} under load; "
                    f"its log ends:\n{service.stderr_tail()}"
                )

    async def stop(self) -> None:
        """Everything, in reverse order; safe to call after a partial start."""
        await asyncio.gather(*(self.stop_service(name) for name in list(self.services)))
        if self.node is not None:
            await self.node.astop()
            self.node = None
        if self.cluster is not None:
            await self.cluster.astop()
            self.cluster = None

    def pids(self) -> dict[str, list[int]]:
        """Process ids per component, for the CPU and RSS columns."""
        found: dict[str, list[int]] = {}
        if self.node is not None and self.node.pid is not None:
            found["kafka"] = [self.node.pid]
        for service in self.services.values():
            if service.process is not None and service.process.returncode is None:
                found[service.name] = [service.process.pid]
        if self.cluster is not None:
            pid_file = self.cluster.data_dir / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError):
                postmaster = int(pid_file.read_text().splitlines()[0])
                found["postgres"] = [postmaster, *_children(postmaster)]
        found["bench"] = [os.getpid()]
        return found

    async def import_county(self) -> None:
        """`xiezuo staffing import` of the demo county; staffing publishes the placements."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli.main",
            "staffing",
            "import",
            str(DEMO_COUNTY_FILE),
            cwd=ROOT,
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            lines = (err or out).decode(errors="replace").strip().splitlines() or ["no output"]
            raise BenchError(f"`xiezuo staffing import` exited {process.returncode}: {lines[-1]}")
        log(out.decode(errors="replace").strip())


class BenchError(RuntimeError):
    """The benchmark could not run; the message says where and why."""


# -- /proc -----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces): state is [0], ppid [1].
    return text[text.rindex(")") + 2 :].split()


def _children(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the processes (and of their children already waited for)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLK_TCK


def rss_mb(pids: Iterable[int]) -> float:
    """Resident set size of the processes, in MB."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


def runqueue_seconds(pids: Iterable[int]) -> float:
    """Time the processes' threads spent runnable but waiting for a CPU (schedstat)."""
    waited_ns = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    waited_ns += int((task / "schedstat").read_text().split()[1])
    return waited_ns / 1e9


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Usage:
    """CPU % and RSS of each component between two moments."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._pids = stack.pids()
        self._cpu = {name: cpu_seconds(pids) for name, pids in self._pids.items()}
        self._waited = {name: runqueue_seconds(pids) for name, pids in self._pids.items()}
        self._machine = machine_busy()
        self._began = time.monotonic()

    def finish(self) -> dict[str, dict[str, float]]:
        """Per component: cpu_pct (100 = one core busy), runq_pct and rss_mb; plus the machine.

        runq_pct is time its threads were ready to run but waited for a CPU (100 = one thread
        waiting all along): high when other work on the machine starves the process.
        """
        elapsed = max(time.monotonic() - self._began, 1e-6)
        now = self._stack.pids()
        result: dict[str, dict[str, float]] = {}
        for name, pids in now.items():
            spent = cpu_seconds(pids) - self._cpu.get(name, 0.0)
            waited = runqueue_seconds(pids) - self._waited.get(name, 0.0)
            result[name] = {
                "cpu_pct": round(100 * max(spent, 0.0) / elapsed, 1),
                "runq_pct": round(100 * max(waited, 0.0) / elapsed, 1),
                "rss_mb": round(rss_mb(pids), 1),
            }
        busy, total = machine_busy()
        cores = os.cpu_count() or 1
        share = (busy - self._machine[0]) / max(total - self._machine[1], 1e-6)
        result["machine"] = {
            "cpu_pct": round(100 * cores * share, 1),
            "runq_pct": 0.0,
            "rss_mb": 0.0,
        }
        return result


# -- watching the bus ------------------------------------------------------------------------


@dataclass
class Seen:
    """Where one report's ClueRegistered sits on the bus, and when we saw it there."""

    partition: int
    offset: int
    at: float


class ClueWatch:
    """Reads ClueRegistered off the clues topic (no group: it commits nothing, joins nothing)."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
        )
        self.seen: dict[str, Seen] = {}
        self.partitions: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self, partitions: Sequence[int]) -> None:
        """Assign every partition of the clues topic from its end (only new clues matter)."""
        await self._consumer.start()
        self.partitions = [TopicPartition(CLUES_TOPIC, p) for p in sorted(partitions)]
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_end(*self.partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=100, max_records=10_000)
            except Exception as error:
                # A broker hiccup must not end the watch: the numbers would read "never".
                log(f"clue watch: {error!r}; retrying")
                await asyncio.sleep(1)
                continue
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("ce_type") != CLUE_REGISTERED or record.value is None:
                        continue
                    report_id = json.loads(record.value).get("report_id")
                    if report_id:
                        self.seen[report_id] = Seen(record.partition, record.offset, now)

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


class GroupWatch:
    """Committed offsets of consumer groups over time, and their lag, via the admin API."""

    def __init__(self, bootstrap: str, poll_seconds: float) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._poll = poll_seconds
        # (group, partition of the clues topic) -> times and committed offsets, both ascending.
        self._times: dict[tuple[str, int], list[float]] = {}
        self._offsets: dict[tuple[str, int], list[int]] = {}
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect (polling starts with `watch`)."""
        await self._admin.start()
        await self._ends.start()

    def watch(self, partitions: Sequence[TopicPartition]) -> None:
        """Poll the committed offsets of cases and assessment on these clues partitions."""
        self._partitions = list(partitions)
        self._task = asyncio.create_task(self._run())

    async def partitions_of(self, topics: Iterable[str]) -> dict[str, list[int]]:
        """Partition numbers of each existing topic (asked of the broker, not a cache)."""
        found: dict[str, list[int]] = {}
        for entry in await self._admin.describe_topics(sorted(set(topics))):
            name = entry.get("topic", entry.get("name"))
            if entry.get("error_code", 0) == 0 and name:
                found[name] = sorted(
                    p.get("partition", p.get("partition_index")) for p in entry["partitions"]
                )
        return found

    async def _run(self) -> None:
        groups = (group_of("cases"), group_of("assessment"))
        while True:
            for group in groups:
                try:
                    committed = await self._admin.list_consumer_group_offsets(
                        group, partitions=self._partitions
                    )
                except Exception as error:
                    log(f"offset watch of {group}: {error!r}; retrying")
                    continue
                now = time.monotonic()
                for tp, meta in committed.items():
                    key = (group, tp.partition)
                    offsets = self._offsets.setdefault(key, [])
                    if meta.offset >= 0 and (not offsets or meta.offset > offsets[-1]):
                        offsets.append(meta.offset)
                        self._times.setdefault(key, []).append(now)
            await asyncio.sleep(self._poll)

    def applied_at(self, service: str, seen: Seen) -> float | None:
        """When the group was first seen committed past the record, or None (not yet)."""
        key = (group_of(service), seen.partition)
        offsets = self._offsets.get(key, [])
        index = bisect.bisect_right(offsets, seen.offset)
        return self._times[key][index] if index < len(offsets) else None

    async def committed(self, group: str, topic: str) -> int:
        """Sum of the group's committed offsets on `topic` (0 where none)."""
        result = await self._admin.list_consumer_group_offsets(group)
        return sum(max(m.offset, 0) for tp, m in result.items() if tp.topic == topic)

    async def end_offset(self, topic: str) -> int:
        """Sum of the topic's end offsets."""
        partitions = (await self.partitions_of([topic])).get(topic, [])
        ends = await self._ends.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())

    async def lag(self, groups: Iterable[str]) -> dict[str, int]:
        """Records each group has not committed yet, over every topic it has committed on."""
        result: dict[str, int] = {}
        committed_by_group = {
            group: await self._admin.list_consumer_group_offsets(group) for group in groups
        }
        topics = {tp.topic for offsets in committed_by_group.values() for tp in offsets}
        known = await self.partitions_of(topics) if topics else {}
        partitions = [TopicPartition(t, p) for t, numbers in known.items() for p in numbers]
        ends = await self._ends.end_offsets(partitions) if partitions else {}
        for group, committed in committed_by_group.items():
            mine = {tp.topic for tp in committed}
            result[group] = sum(
                end - max(committed[tp].offset if tp in committed else 0, 0)
                for tp, end in ends.items()
                if tp.topic in mine
            )
        return result

    async def stop(self) -> None:
        """Stop polling and disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._ends.stop()
        await self._admin.close()


# -- load ------------------------------------------------------------------------------------


@dataclass
class Call:
    """One SubmitReport as the client saw it (monotonic seconds)."""

    sent: float
    done: float = 0.0
    code: str = ""
    report_id: str = ""
    linked: bool = False
    detail: str = ""


class Submitter:
    """Open-loop SubmitReport calls over a few HTTP/2 connections, with a dev token."""

    def __init__(self, stack: Stack, plan: CountyPlan, *, channels: int, timeout: float) -> None:
        platform = PlatformSettings()
        token = mint_dev_token(
            key_dir=stack.state_dir / "keys",
            subject="bench-pipeline",
            roles=["intake_officer"],
            county_id=plan.county_id,
            zone_ids=[ALL_ZONES],
            ttl_seconds=6 * 3600,
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.plan = plan
        self.timeout = timeout
        # A local subchannel pool per channel: separate connections, not one shared socket.
        self._channels = [
            grpc.aio.insecure_channel(
                stack.services["intake"].grpc, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(channels)
        ]
        self._stubs = [intake_pb2_grpc.IntakeServiceStub(channel) for channel in self._channels]
        self._batch = 0

    def requests(self, count: int) -> list[intake_pb2.SubmitReportRequest]:
        """`count` distinct demo reports received in the last hour, registered on receipt."""
        self._batch += 1
        now = datetime.now(UTC)
        reports = generate_scenario(
            self.plan,
            seed=random.randrange(1 << 30),
            count=count,
            start=now - timedelta(hours=1),
            until=now - timedelta(minutes=1),
        )
        requests = []
        for index, report in enumerate(reports):
            request = submit_request(report)
            # Registered now, by the clock of intake, not back-entered from paper.
            request.ClearField("registered_at")
            request.idempotency_key = f"bench-{uuid.uuid4().hex[:12]}-{self._batch}-{index}"
            requests.append(request)
        return requests

    async def warm_up(self, calls: int = 20, within: float = 120.0) -> None:
        """Until intake routes the county's reports (its registry copy arrived), then a few more."""
        deadline = time.monotonic() + within
        done = 0
        while done < calls:
            request = self.requests(1)[0]
            try:
                await self._stubs[done % len(self._stubs)].SubmitReport(
                    request, metadata=self.metadata, timeout=self.timeout
                )
                done += 1
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.INVALID_ARGUMENT or time.monotonic() > deadline:
                    raise BenchError(
                        f"intake refused a warm-up report: {error.code().name} {error.details()}"
                    ) from error
                await asyncio.sleep(0.5)

    async def offer(self, rate: float, requests: list[Any]) -> list[Call]:
        """Send each request when it is due (i / rate s after the start); wait for the answers."""
        calls: list[Call] = []
        tasks: list[asyncio.Task[None]] = []
        began = time.monotonic()
        for index, request in enumerate(requests):
            delay = began + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            call = Call(sent=time.monotonic())
            calls.append(call)
            stub = self._stubs[index % len(self._stubs)]
            tasks.append(asyncio.create_task(self._one(stub, request, call)))
        await asyncio.gather(*tasks)
        return calls

    async def _one(self, stub: Any, request: Any, call: Call) -> None:
        try:
            reply = await stub.SubmitReport(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            call.code = error.code().name
            call.detail = (error.details() or "")[:200]
        else:
            call.code = "OK"
            call.report_id = reply.report_id
            call.linked = reply.linked
        call.done = time.monotonic()

    async def close(self) -> None:
        """Close the connections."""
        for channel in self._channels:
            await channel.close()


# -- PostgreSQL statements -------------------------------------------------------------------

# One duration line of the server log, with the database in front (log_line_prefix below).
_DURATION = re.compile(r"^DB=(\S*) LOG:  duration: ([0-9.]+) ms  (parse|bind|execute|statement)")


async def log_statements(cluster: PostgresCluster, *, after: float, seconds: float) -> str:
    """Every statement's duration for `seconds`, `after` seconds from now; the log's lines.

    Through `ALTER SYSTEM` and a reload, reset afterwards: the services keep their
    connections and nothing else in them changes. Logging every statement costs the server
    a little while it runs; the lines are read from the cluster's log file.
    """
    await asyncio.sleep(after)
    connection = await asyncpg.connect(cluster.dsn())
    try:
        start = cluster.log_path.stat().st_size
        await connection.execute("ALTER SYSTEM SET log_line_prefix = 'DB=%d '")
        await connection.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
        await connection.execute("SELECT pg_reload_conf()")
        await asyncio.sleep(seconds)
    finally:
        # Reset even when the run is stopped mid-log: ALTER SYSTEM writes the data dir, which
        # `--keep` leaves behind.
        await connection.execute("ALTER SYSTEM RESET log_min_duration_statement")
        await connection.execute("ALTER SYSTEM RESET log_line_prefix")
        await connection.execute("SELECT pg_reload_conf()")
        await connection.close()
    with cluster.log_path.open("rb") as log_file:
        log_file.seek(start)
        return log_file.read().decode(errors="replace")


def summarise_statements(log_text: str, top: int = 15) -> dict[str, Any]:
    """Statement time per database and per statement (kind and text, parameters folded)."""
    records: list[list[Any]] = []
    current: list[Any] | None = None  # the duration record the next indented lines continue
    for line in log_text.splitlines():
        found = _DURATION.match(line)
        if found:
            current = [found[1], float(found[2]), found[3], line[found.end() :].split(": ", 1)[-1]]
            records.append(current)
        elif current is not None and line.startswith(("\t", " ")):
            current[3] += " " + line.strip()
        elif line.startswith("DB="):
            current = None  # another message of the server's
    by_statement: dict[tuple[str, str, str], list[float]] = {}
    by_database: dict[str, float] = {}
    for database, ms, kind, text in records:
        folded = re.sub(r"\s+", " ", re.sub(r"\$\d+", "$", text))[:120]
        total = by_statement.setdefault((database, kind, folded), [0.0, 0])
        total[0] += ms
        total[1] += 1
        by_database[database] = by_database.get(database, 0.0) + ms
    ranked = sorted(by_statement.items(), key=lambda item: -item[1][0])[:top]
    return {
        "total_ms": round(sum(by_database.values()), 1),
        "statements": sum(int(count) for _, count in by_statement.values()),
        "by_database_ms": {k: round(v, 1) for k, v in sorted(by_database.items())},
        "top": [
            {"ms": round(ms, 1), "count": int(n), "database": d, "kind": k, "statement": t}
            for (d, k, t), (ms, n) in ranked
        ],
    }


# -- profiles --------------------------------------------------------------------------------


class Profiler:
    """py-spy (if installed) sampling services during a step's send window, not pausing them."""

    def __init__(self, label: str, outputs: dict[str, Path], processes: list[Any]) -> None:
        self.label = label
        self._outputs = outputs
        self._processes = processes

    @classmethod
    async def start(cls, stack: Stack, args: argparse.Namespace, *, label: str) -> Profiler | None:
        """Start one py-spy per profiled service for --step-seconds; None without --profile."""
        if not args.profile:
            return None
        search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        spy = shutil.which("py-spy", path=search)
        if spy is None:
            raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
        outputs: dict[str, Path] = {}
        processes = []
        for name in args.profile_services:
            service = stack.services[name]
            if service.process is None:
                continue
            outputs[name] = args.profile / f"{label}-{name}.txt"
            processes.append(
                await asyncio.create_subprocess_exec(
                    spy,
                    "record",
                    "--pid",
                    str(service.process.pid),
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--duration",
                    str(max(1, int(args.step_seconds))),
                    "--output",
                    str(outputs[name]),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        return cls(label, outputs, processes)

    async def finish(self) -> dict[str, Any]:
        """Wait for the recordings; per service, the functions taking the most samples."""
        for process in self._processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        return {
            name: summarise_profile(path) for name, path in self._outputs.items() if path.exists()
        }


# Frames under every sample (process start, event loop, threads): true but no help in ranking.
_PLUMBING = (
    "<frozen runpy>",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "typer/",
    "click/",
    "services/cli/",
    "threading.py",
)


# Leaves that block: selectors, condition variables, a thread's C target (gRPC's poller).
_WAITS = (".select (selectors.py:", "Condition.wait (threading.py:", "Thread.run (threading.py:")


def _waiting(leaf: str) -> bool:
    """A sample caught waiting (event loop in select, SQLite worker on its queue), not working."""
    if any(wait in leaf for wait in _WAITS):
        return True
    return leaf in _sqlite_queue_waits()


@functools.cache
def _sqlite_queue_waits() -> frozenset[str]:
    # aiosqlite's worker thread blocks on `tx.get()` between statements; find that line here.
    import aiosqlite.core

    lines = Path(aiosqlite.core.__file__).read_text().splitlines()
    return frozenset(
        f"_connection_worker_thread (aiosqlite/core.py:{number})"
        for number, line in enumerate(lines, 1)
        if "tx.get(" in line
    )


def summarise_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """From py-spy's collapsed stacks: the top functions, inclusive and self, of busy samples."""
    total = waiting = 0
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        raw = stack_text.split(";")
        if _waiting(raw[-1]):
            waiting += count
            continue
        # "function (file.py:line)": the line dropped, so one function is one entry.
        frames = [frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame for frame in raw]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    busy = total - waiting

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        shown = {f: n for f, n in counts.items() if not any(b in f for b in _PLUMBING)}
        best = sorted(shown.items(), key=lambda item: -item[1])[:top]
        return [(_short(frame), round(100 * n / max(busy, 1), 1)) for frame, n in best]

    return {
        "samples": total,
        "busy_samples": busy,
        "file": str(path),
        "inclusive_pct": ranked(inclusive),
        "self_pct": ranked(own),
    }


def _short(frame: str) -> str:
    # Paths inside site-packages or the tree are long; the module path is enough to find them.
    for marker in ("site-packages/", f"{ROOT}/"):
        if marker in frame:
            head, _, tail = frame.partition("(")
            return f"{head}({tail.split(marker, 1)[-1]}"
    return frame


# -- numbers ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (inf counts as never)."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(share * len(values)) - 1))]


def ms(value: float) -> float | None:
    """Seconds as rounded milliseconds; None for never/unknown (JSON has no inf)."""
    if math.isnan(value) or math.isinf(value):
        return None
    return round(1000 * value, 1)


@dataclass
class StepResult:
    """Everything measured in one step."""

    offered_per_s: float
    seconds: float
    sent: int
    sent_per_s: float
    accepted: int
    accepted_per_s: float
    errors: dict[str, int]
    error_examples: dict[str, str]
    linked: int
    submit_p50_ms: float | None
    submit_p99_ms: float | None
    bus_p50_ms: float | None
    bus_p99_ms: float | None
    cases_p50_ms: float | None
    cases_p99_ms: float | None
    assessment_p50_ms: float | None
    assessment_p99_ms: float | None
    not_in_cases: int
    not_in_assessment: int
    lag_end: dict[str, int]
    lag_slope_per_s: dict[str, float]
    lag_growing: list[str]
    processes: dict[str, dict[str, float]]
    load_avg: tuple[float, float, float]
    held: bool
    failed_clearly: bool
    stored_before: int = 0


def _slope(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 3:
        return 0.0
    xs = [t for t, _ in samples]
    ys = [float(v) for _, v in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


async def run_step(
    stack: Stack,
    submitter: Submitter,
    clues: ClueWatch,
    groups: GroupWatch,
    *,
    rate: float,
    args: argparse.Namespace,
    label: str = "",
) -> StepResult:
    """One step of offered load, then the drain; returns its numbers."""
    count = max(1, round(rate * args.step_seconds))
    requests = submitter.requests(count)
    names = [group_of(s) for s in SERVICES]
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
    sending = asyncio.Event()

    async def sample_lag() -> None:
        while not sending.is_set():
            with contextlib.suppress(Exception):
                now = time.monotonic()
                for group, value in (await groups.lag(names)).items():
                    samples[group].append((now, value))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sending.wait(), 1.0)

    usage = Usage(stack)
    label = label or f"{rate:g}-per-s"
    profiling = await Profiler.start(stack, args, label=label)
    logging_statements = None
    if args.pg_statements and stack.cluster is not None:
        # From the middle of the send window, so the step's load is there while it logs.
        after = max(0.0, (args.step_seconds - args.pg_statements) / 2)
        logging_statements = asyncio.create_task(
            log_statements(stack.cluster, after=after, seconds=args.pg_statements)
        )
    sampler = asyncio.create_task(sample_lag())
    calls = await submitter.offer(rate, requests)
    if profiling is not None:
        args.profiles[profiling.label] = await profiling.finish()
    if logging_statements is not None:
        summary = summarise_statements(await logging_statements)
        args.statement_logs[label] = summary
    # Sent over the send window; accepted over the send window plus the answers' tail.
    sending_s = max(calls[-1].sent - calls[0].sent + 1 / rate, 1e-6)
    elapsed = max(max(c.done for c in calls) - calls[0].sent, sending_s)
    sending.set()
    await sampler
    processes = usage.finish()
    lag_end = await groups.lag(names)
    stack.check_alive()
    # Drain: wait until every accepted report is counted by assessment (or the time is up).
    accepted = [c for c in calls if c.code == "OK"]
    tracked = [c for c in accepted if not c.linked]
    deadline = time.monotonic() + args.drain_seconds
    while time.monotonic() < deadline:
        pending = [
            c
            for c in tracked
            if c.report_id not in clues.seen
            or groups.applied_at("assessment", clues.seen[c.report_id]) is None
            or groups.applied_at("cases", clues.seen[c.report_id]) is None
        ]
        if not pending:
            break
        await asyncio.sleep(0.2)
    submit = sorted(c.done - c.sent for c in accepted)
    bus: list[float] = []
    in_cases: list[float] = []
    in_assessment: list[float] = []
    for call in tracked:
        seen = clues.seen.get(call.report_id)
        bus.append(seen.at - call.sent if seen else math.inf)
        for service, into in (("cases", in_cases), ("assessment", in_assessment)):
            applied = groups.applied_at(service, seen) if seen else None
            into.append(applied - call.sent if applied is not None else math.inf)
    bus.sort()
    in_cases.sort()
    in_assessment.sort()
    errors: dict[str, int] = {}
    error_examples: dict[str, str] = {}
    for call in calls:
        if call.code != "OK":
            errors[call.code] = errors.get(call.code, 0) + 1
            error_examples.setdefault(call.code, call.detail)
    slopes = {group: round(_slope(samples[group]), 1) for group in names}
    # Growing: more than half a second of the offered load behind at the end, and rising.
    growing = [
        group
        for group in names
        if lag_end.get(group, 0) > max(20, 0.5 * rate) and slopes[group] > 0.05 * rate
    ]
    p99 = percentile(submit, 0.99)
    accepted_share = len(accepted) / len(calls)
    target = args.target_p99_ms / 1000
    held = accepted_share >= 0.95 and p99 <= target and not growing
    failed_clearly = accepted_share < 0.8 or p99 > 4 * target or math.isnan(p99)
    return StepResult(
        offered_per_s=rate,
        seconds=round(elapsed, 2),
        sent=len(calls),
        sent_per_s=round(len(calls) / sending_s, 1),
        accepted=len(accepted),
        accepted_per_s=round(len(accepted) / elapsed, 1),
        errors=errors,
        error_examples=error_examples,
        linked=len(accepted) - len(tracked),
        submit_p50_ms=ms(percentile(submit, 0.5)),
        submit_p99_ms=ms(p99),
        bus_p50_ms=ms(percentile(bus, 0.5)),
        bus_p99_ms=ms(percentile(bus, 0.99)),
        cases_p50_ms=ms(percentile(in_cases, 0.5)),
        cases_p99_ms=ms(percentile(in_cases, 0.99)),
        assessment_p50_ms=ms(percentile(in_assessment, 0.5)),
        assessment_p99_ms=ms(percentile(in_assessment, 0.99)),
        not_in_cases=sum(1 for v in in_cases if math.isinf(v)),
        not_in_assessment=sum(1 for v in in_assessment if math.isinf(v)),
        lag_end=lag_end,
        lag_slope_per_s=slopes,
        lag_growing=growing,
        processes=processes,
        load_avg=os.getloadavg(),
        held=held,
        failed_clearly=failed_clearly,
    )


async def settle(stack: Stack, groups: GroupWatch, within: float) -> dict[str, int]:
    """Wait until no consumer group has lag (or the time is up); the last lag seen."""
    deadline = time.monotonic() + within
    names = [group_of(s) for s in SERVICES]
    while True:
        stack.check_alive()
        lag = await groups.lag(names)
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(0.5)


# -- growth: reports stored directly ---------------------------------------------------------


async def seed_intake(url: str, count: int) -> list[ClueRegistered]:
    """`count` demo-county reports of the last 80 days, inserted at SEED_REVISION, then migrated.

    Returns the ClueRegistered each stored report's clue was published with.
    """
    from sqlalchemy import column, insert, table
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.intake.domain.duplicates import DuplicateProfile, normalise
    from services.runtime.migrate import upgrade

    await asyncio.to_thread(upgrade, "intake", url, SEED_REVISION)
    now = datetime.now(UTC)
    reports = generate_scenario(
        load_county_plan(), seed=1, count=count, start=now - timedelta(days=80), until=now
    )
    names = (
        "report_id clue_id county_id zone_id township_id idempotency_key request_fingerprint "
        "channel subject_name subject_post subject_unit subject_township_id subject_village "
        "subject_cadre_level allegation_categories real_name content_kek_id "
        "content_wrapped_key content_nonce content_ciphertext receipt_hash submitted_by "
        "received_at registered_at receipt_prefix status status_note duplicate_fingerprint"
    )
    report_table = table("report", *[column(name) for name in names.split()])
    # Each stored report opened its own clue: a new report may be linked to it.
    clue_columns = ["clue_id", "county_id", "zone_id", "first_report_id", "registered_at"]
    clue_columns += ["repeat_count", "priority", "progress"]
    clue_table = table("intake_clue", *[column(name) for name in clue_columns])
    engine = create_async_engine(url)
    events: list[ClueRegistered] = []
    try:
        for first in range(0, count, 5_000):
            rows = [
                _seed_row(index, report, normalise, DuplicateProfile)
                for index, report in enumerate(reports[first : first + 5_000], first)
            ]
            clues = [
                {
                    "clue_id": row["clue_id"],
                    "county_id": row["county_id"],
                    "zone_id": row["zone_id"],
                    "first_report_id": row["report_id"],
                    "registered_at": row["registered_at"],
                    "repeat_count": 1,
                    "priority": 50,
                    "progress": "",
                }
                for row in rows
            ]
            async with engine.begin() as connection:
                await connection.execute(insert(report_table), rows)
                await connection.execute(insert(clue_table), clues)
            events += [
                clue_registered(report, row["clue_id"], row["report_id"], report.registered_at)
                for report, row in zip(reports[first : first + 5_000], rows, strict=True)
            ]
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade, "intake", url)
    return events


async def publish_stored_clues(bootstrap: str, events: Sequence[ClueRegistered]) -> int:
    """Publish the stored clues' ClueRegistered as intake's relay did when they were new."""
    from services.runtime.host import ensure_topics

    # Created as the services create them (their default partition count: the stack's
    # services get no XIEZUO_* settings of ours), not by the first send's broker default.
    fields = PlatformSettings.model_fields
    await ensure_topics(
        bootstrap,
        partitions=fields["kafka_topic_partitions"].default,
        replication_factor=fields["kafka_topic_replication_factor"].default,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        futures = []
        for event in events:
            envelope = _clue_envelope(event)
            futures.append(
                await producer.send(
                    CLUES_TOPIC,
                    envelope.data,
                    key=event.partition_key().encode(),
                    headers=envelope.headers(),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(events)


def _seed_row(index: int, report: ScriptedReport, normalise: Any, profile: Any) -> dict[str, Any]:
    fingerprint = profile(
        report.county_id,
        normalise(report.subject_name),
        normalise(report.subject_unit),
        report.township_id,
        frozenset(report.categories),
        report.received_at,
    ).fingerprint
    return {
        "report_id": f"rpt-stored-{index}",
        "clue_id": f"clue-stored-{index}",
        "county_id": report.county_id,
        "zone_id": report.zone_id,
        "township_id": report.township_id,
        "idempotency_key": f"stored-{index}",
        "request_fingerprint": "0" * 64,
        "channel": report.channel,
        "subject_name": report.subject_name,
        "subject_post": report.subject_post,
        "subject_unit": report.subject_unit,
        "subject_township_id": report.township_id,
        "subject_village": report.village,
        "subject_cadre_level": report.cadre_level,
        "allegation_categories": json.dumps(list(report.categories)),
        "real_name": False,
        "content_kek_id": "stored",
        "content_wrapped_key": b"\0",
        "content_nonce": b"\0",
        "content_ciphertext": b"\0",
        # Never looked up: only the row's weight in duplicate matching matters here.
        "receipt_hash": "scrypt$16384$8$1$00$00",
        "submitted_by": "bench-stored",
        "received_at": report.received_at,
        "registered_at": report.registered_at,
        "receipt_prefix": f"{index % 10_000:04d}",
        "status": "received",
        "status_note": "",
        "duplicate_fingerprint": fingerprint,
    }


# -- consumer-only ---------------------------------------------------------------------------


def clue_events(plan: CountyPlan, count: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """`count` ClueRegistered records (key, value, headers) as intake's relay would publish."""
    now = datetime.now(UTC)
    reports = generate_scenario(
        plan, seed=2, count=count, start=now - timedelta(days=1), until=now - timedelta(hours=1)
    )
    records = []
    for report in reports:
        # Ids as intake mints them (time-ordered, runtime/ids.py).
        suffix = time_ordered_uuid().hex
        event = clue_registered(report, f"clue-{suffix}", f"rpt-{suffix}", report.received_at)
        envelope = _clue_envelope(event)
        records.append((event.partition_key().encode(), envelope.data, envelope.headers()))
    return records


def clue_registered(
    report: ScriptedReport, clue_id: str, report_id: str, registered_at: datetime
) -> ClueRegistered:
    """The ClueRegistered intake publishes for a scripted report's new clue."""
    return ClueRegistered(
        county_id=report.county_id,
        zone_id=report.zone_id,
        clue_id=clue_id,
        report_id=report_id,
        township_id=report.township_id,
        channel=report.channel,
        allegation_categories=list(report.categories),
        subject=ReportedSubject(
            name=report.subject_name,
            post=report.subject_post,
            unit=report.subject_unit,
            township_id=report.township_id,
            village=report.village,
            cadre_level=report.cadre_level,
        ),
        real_name=report.real_name,
        campaign_id=report.campaign_id,
        received_at=report.received_at,
        registered_at=registered_at,
        priority=50,
    )


def _clue_envelope(event: ClueRegistered) -> Envelope:
    return Envelope(
        id=str(time_ordered_uuid()),
        type=event.event_type,
        source="xiezuo/intake",
        time=event.registered_at,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
        subject=event.subject_id(),
    )


async def consumer_only(
    stack: Stack, groups: GroupWatch, args: argparse.Namespace
) -> dict[str, Any]:
    """Each of cases and assessment alone, catching up on a published backlog of clues."""
    plan = load_county_plan()
    consumers = ("cases", "assessment")
    for name in consumers:
        await stack.stop_service(name)
    records = clue_events(plan, args.events)
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        began = time.monotonic()
        futures = [
            await producer.send(CLUES_TOPIC, value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)
        log(f"published {len(records)} ClueRegistered in {time.monotonic() - began:.1f} s")
    finally:
        await producer.stop()
    end = await groups.end_offset(CLUES_TOPIC)
    results: dict[str, Any] = {"events": len(records), "topic": CLUES_TOPIC}
    for name in consumers:
        group = group_of(name)
        start_offset = await groups.committed(group, CLUES_TOPIC)
        usage = Usage(stack)
        await stack.start_service(name)
        first: tuple[float, int] | None = None
        # The process's CPU from its first commit on: what applying costs, start-up left out.
        cpu_at_first = 0.0
        last = (time.monotonic(), start_offset)
        deadline = time.monotonic() + args.consumer_timeout
        while True:
            stack.check_alive()
            done = await groups.committed(group, CLUES_TOPIC)
            now = time.monotonic()
            if first is None and done > start_offset:
                first = (now, done)
                cpu_at_first = cpu_seconds(stack.pids().get(name, []))
            last = (now, done)
            if done >= end or now > deadline:
                break
            await asyncio.sleep(args.offset_poll_ms / 1000)
        cpu_applying = cpu_seconds(stack.pids().get(name, [])) - cpu_at_first
        processes = usage.finish()
        applied = last[1] - (first[1] if first else start_offset)
        seconds = last[0] - first[0] if first else math.nan
        results[name] = {
            "applied": last[1] - start_offset,
            "caught_up": last[1] >= end,
            "events_per_s": round(applied / seconds, 1) if first and seconds > 0 else None,
            "seconds_from_first_commit": round(seconds, 2) if first else None,
            "cpu_pct": processes.get(name, {}).get("cpu_pct"),
            # Load-independent (mostly): CPU time per event applied after the first commit.
            "cpu_ms_per_event": (
                round(1000 * cpu_applying / applied, 3) if first and applied > 0 else None
            ),
            "runq_pct": processes.get(name, {}).get("runq_pct"),
            "rss_mb": processes.get(name, {}).get("rss_mb"),
        }
        log(f"{name}: {results[name]}")
        await stack.stop_service(name)
    return results


# -- output ----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain, aligned text table."""
    cells = [list(headers), *[[_fmt(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def step_tables(steps: Sequence[StepResult], *, first_column: str = "offered/s") -> str:
    """The latency, resources and CPU-per-report tables of a run."""
    latency = table(
        [
            first_column,
            "sent/s",
            "ok/s",
            "err",
            "linked",
            "submit p50",
            "p99",
            "bus p50",
            "p99",
            "cases p50",
            "p99",
            "assess p50",
            "p99",
            "held",
        ],
        [
            [
                s.stored_before if first_column == "stored" else s.offered_per_s,
                s.sent_per_s,
                s.accepted_per_s,
                sum(s.errors.values()),
                s.linked,
                s.submit_p50_ms,
                s.submit_p99_ms,
                s.bus_p50_ms,
                s.bus_p99_ms,
                s.cases_p50_ms,
                s.cases_p99_ms,
                s.assessment_p50_ms,
                s.assessment_p99_ms,
                "yes" if s.held else "no",
            ]
            for s in steps
        ],
    )
    components = sorted(
        {name for s in steps for name in s.processes},
        key=lambda n: (n == "machine", n == "bench", n),
    )
    groups = [group_of(name) for name in SERVICES]
    resources = table(
        [
            first_column,
            *[
                f"{c.removesuffix('ment')} cpu/runq/MB" if c != "machine" else "machine cpu"
                for c in components
            ],
            *[f"lag {g.removeprefix('xiezuo-')}" for g in groups],
            "load",
        ],
        [
            [
                s.stored_before if first_column == "stored" else s.offered_per_s,
                *[_usage_cell(s.processes.get(c), machine=c == "machine") for c in components],
                *[f"{s.lag_end.get(g, 0)}{'↑' if g in s.lag_growing else ''}" for g in groups],
                f"{s.load_avg[0]:.2f}",
            ]
            for s in steps
        ],
    )
    processes = [c for c in components if c != "machine"]
    cores = os.cpu_count() or 1
    budget = table(
        [
            first_column,
            *[c.removesuffix("ment") for c in processes],
            "all",
            "bound/s",
        ],
        [
            [
                s.stored_before if first_column == "stored" else s.offered_per_s,
                *_per_report_cells(s, processes, cores),
            ]
            for s in steps
        ],
    )
    return (
        "latencies in ms from the moment a call was sent; 'never' = not within the drain\n"
        + latency
        + "\n\nper process: CPU % (100 = one core busy) / run-queue wait % (ready but no CPU "
        "free) / RSS MB; lag at step end (↑ = growing); 1-min load average\n"
        + resources
        + "\n\nCPU per accepted report, ms of one core (CPU % × 10 ÷ ok/s); bound/s = the "
        f"machine's {cores} cores ÷ all of it: the most this cost per report lets the machine "
        "carry with every core busy\n" + budget
    )


def _per_report_cells(step: StepResult, processes: Sequence[str], cores: int) -> list[str]:
    """Each process's CPU ms per accepted report in a step, their sum and the machine bound."""
    if step.accepted_per_s <= 0:
        return ["" for _ in processes] + ["", ""]
    spent = {
        name: usage["cpu_pct"] * 10 / step.accepted_per_s
        for name in processes
        if (usage := step.processes.get(name)) is not None
    }
    total = sum(spent.values())
    cells = [f"{spent[name]:.2f}" if name in spent else "" for name in processes]
    return [*cells, f"{total:.2f}", f"{1000 * cores / total:,.0f}" if total > 0 else ""]


def _usage_cell(usage: dict[str, float] | None, *, machine: bool) -> str:
    if usage is None:
        return ""
    if machine:
        return f"{usage['cpu_pct']:.0f}"
    return f"{usage['cpu_pct']:.0f}/{usage.get('runq_pct', 0.0):.0f}/{usage['rss_mb']:.0f}"


# -- modes -----------------------------------------------------------------------------------


async def with_stack(
    args: argparse.Namespace,
    scratch: Path,
    seed_reports: int = 0,
    *,
    measure_bus: bool = False,
    extra_env: dict[str, str] | None = None,
) -> tuple[Stack, GroupWatch, ClueWatch, Submitter]:
    """A started stack with the county loaded and the watchers running."""
    stack = Stack(scratch, postgres=args.postgres, seed_reports=seed_reports)
    stack.extra_env.update(extra_env or {})
    args.stacks.append(stack)
    await stack.start_broker()
    if measure_bus and args.ceiling_messages:
        # Before the services start: the broker has the machine to itself.
        args.bus = await ceiling(stack, args)
    await stack.start_services()
    await stack.import_county()
    plan = load_county_plan()
    submitter = Submitter(stack, plan, channels=args.channels, timeout=args.call_timeout)
    args.closers.append(submitter.close)
    await submitter.warm_up()
    groups = GroupWatch(stack.bootstrap, args.offset_poll_ms / 1000)
    args.closers.append(groups.stop)
    await groups.start()
    partitions = (await groups.partitions_of([CLUES_TOPIC])).get(CLUES_TOPIC)
    if not partitions:
        raise BenchError(f"topic {CLUES_TOPIC} does not exist (did intake start?)")
    clues = ClueWatch(stack.bootstrap)
    args.closers.append(clues.stop)
    await clues.start(partitions)
    groups.watch(clues.partitions)
    began = time.monotonic()
    # Stored clues published before the start are applied first (a few thousand a second).
    lag = await settle(stack, groups, 60 + seed_reports / 200)
    log(f"county loaded and warmed up in {time.monotonic() - began:.0f} s; lag {lag}")
    return stack, groups, clues, submitter


async def ceiling(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """bus_ceiling.py's produce-then-consume run on this stack's broker."""
    log(f"bus ceiling: {args.ceiling_messages} messages of {args.ceiling_bytes} B ...")
    result: dict[str, Any] = await bus_ceiling.run(
        stack.bootstrap, args.ceiling_messages, args.ceiling_bytes, 3
    )
    log(
        f"bus ceiling: {result['produce_msgs_per_s']:,} produced/s, "
        f"{result['consume_msgs_per_s']:,} consumed/s"
    )
    return result


async def steps_mode(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Offered load in steps until one clearly fails or the time is up."""
    stack, groups, clues, submitter = await with_stack(args, scratch / "run", measure_bus=True)
    results: list[StepResult] = []
    give_up = time.monotonic() + args.max_minutes * 60
    for rate in args.steps:
        if time.monotonic() > give_up:
            log(f"--max-minutes {args.max_minutes} reached; not running {rate}/s and above")
            break
        log(f"step {rate}/s for {args.step_seconds} s ...")
        result = await run_step(stack, submitter, clues, groups, rate=rate, args=args)
        results.append(result)
        log(
            f"step {rate}/s: ok {result.accepted_per_s}/s, p99 {result.submit_p99_ms} ms, "
            f"cases p99 {result.cases_p99_ms} ms, held={result.held}"
        )
        if result.failed_clearly:
            log("step clearly failed; stopping")
            break
        await settle(stack, groups, args.drain_seconds)
    return summary(results, args.bus, args)


def summary(
    results: list[StepResult], bus: dict[str, Any] | None, args: argparse.Namespace
) -> dict[str, Any]:
    """The run as one JSON-able object."""
    held = [s.offered_per_s for s in results if s.held]
    best = max(held) if held else None
    ceiling_rate = bus["produce_msgs_per_s"] if bus else None
    return {
        "mode": args.mode,
        "database": "postgres" if args.postgres else "sqlite",
        "tree": str(ROOT),
        "step_seconds": args.step_seconds,
        "target_p99_ms": args.target_p99_ms,
        "bus_ceiling": bus,
        "steps": [asdict(s) for s in results],
        "highest_held_per_s": best,
        "ratio_to_bus_ceiling": (
            round(best / ceiling_rate, 5) if best is not None and ceiling_rate else None
        ),
        "cpus": os.cpu_count(),
        "profiles": args.profiles,
        "statement_logs": args.statement_logs,
        "load_avg_end": os.getloadavg(),
    }


async def growth_mode(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """One step on a fresh stack per count of reports already stored."""
    results: list[StepResult] = []
    seeding: dict[int, float | None] = {}
    # Records cases parked during each step: a linked report naming a clue cases never
    # registered is one (and costs its consumer its retries' back-off).
    parked: dict[int, int] = {}
    for stored in args.growth_stored:
        stack, groups, clues, submitter = await with_stack(
            args,
            scratch / f"stored-{stored}",
            seed_reports=stored,
            # Every stored count alike: no deadline pass during the run (see the docstring).
            extra_env={"XIEZUO_CASES_DEADLINE_SCAN_SECONDS": "86400"},
        )
        seeding[stored] = stack.seed_seconds
        log(f"{stored} stored: step {args.growth_rate}/s for {args.step_seconds} s ...")
        dead_letters = "xiezuo.cases.dead-letter"
        parked_before = await groups.end_offset(dead_letters)
        result = await run_step(stack, submitter, clues, groups, rate=args.growth_rate, args=args)
        parked[stored] = await groups.end_offset(dead_letters) - parked_before
        result.stored_before = stored
        results.append(result)
        log(
            f"{stored} stored: ok {result.accepted_per_s}/s, p99 {result.submit_p99_ms} ms, "
            f"cases p99 {result.cases_p99_ms} ms, {parked[stored]} dead-lettered by cases"
        )
        for closer in reversed(args.closers):
            await closer()
        args.closers.clear()
        args.stacks.remove(stack)
        await stack.stop()
    out = summary(results, None, args)
    out["growth_rate"] = args.growth_rate
    out["seed_seconds"] = seeding
    out["seed_path"] = (
        f"direct insert at {SEED_REVISION}, then migrated to head; the stored clues' "
        "ClueRegistered published and applied by cases and assessment before the step"
    )
    out["cases_dead_letters_in_step"] = parked
    return out


async def consumer_mode(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Apply rates of cases and assessment on a published backlog."""
    stack, groups, _, _ = await with_stack(args, scratch / "run")
    return {
        "mode": args.mode,
        "database": "postgres" if args.postgres else "sqlite",
        "tree": str(ROOT),
        "consumers": await consumer_only(stack, groups, args),
        "load_avg_end": os.getloadavg(),
    }


def print_results(out: dict[str, Any], args: argparse.Namespace) -> None:
    """Tables on stdout (or JSON there and tables on stderr with --json)."""
    stream: IO[str] = sys.stderr if args.json else sys.stdout
    print(f"\n{args.mode}, {out['database']}, tree {out['tree']}", file=stream)
    if args.mode == "consumer-only":
        consumers = out["consumers"]
        print(
            table(
                [
                    "consumer",
                    "events",
                    "applied",
                    "caught up",
                    "events/s",
                    "cpu ms/event",
                    "cpu%",
                    "runq%",
                    "RSS MB",
                ],
                [
                    [
                        name,
                        consumers["events"],
                        c["applied"],
                        "yes" if c["caught_up"] else "no",
                        c["events_per_s"],
                        # Two decimals: the usual figures are well under one ms.
                        "-"
                        if c.get("cpu_ms_per_event") is None
                        else f"{c['cpu_ms_per_event']:.2f}",
                        c["cpu_pct"],
                        c["runq_pct"],
                        c["rss_mb"],
                    ]
                    for name, c in consumers.items()
                    if isinstance(c, dict)
                ],
            ),
            file=stream,
        )
    else:
        steps = [StepResult(**{**s, "load_avg": tuple(s["load_avg"])}) for s in out["steps"]]
        first = "stored" if args.mode == "growth" else "offered/s"
        print(step_tables(steps, first_column=first), file=stream)
        if "cases_dead_letters_in_step" in out:
            parked = out["cases_dead_letters_in_step"]
            print(
                "dead-lettered by cases during the step: "
                + ", ".join(f"{count} ({stored} stored)" for stored, count in parked.items()),
                file=stream,
            )
        bus = out.get("bus_ceiling")
        if bus:
            print(
                f"\nbus ceiling (same broker, same run): {bus['produce_msgs_per_s']:,} msgs/s "
                f"produced, {bus['consume_msgs_per_s']:,} consumed ({bus['message_bytes']} B)",
                file=stream,
            )
        if args.mode == "steps":
            print(
                f"highest step held (p99 ≤ {args.target_p99_ms:.0f} ms, ≥ 95 % accepted, no "
                f"growing lag): {_fmt(out['highest_held_per_s'])} reports/s; ratio to the "
                f"bus ceiling: {out['ratio_to_bus_ceiling']}",
                file=stream,
            )
    for label, services in out.get("profiles", {}).items():
        for name, profile in services.items():
            print(
                f"\nprofile {label} {name}: {profile['busy_samples']} of {profile['samples']} "
                "samples not caught waiting (100/s, every thread); "
                f"inclusive % of them; raw stacks in {profile['file']}",
                file=stream,
            )
            for frame, share in profile["inclusive_pct"]:
                print(f"  {share:5.1f} %  {frame}", file=stream)
            print("  self (where the samples were taken):", file=stream)
            for frame, share in profile["self_pct"][:8]:
                print(f"  {share:5.1f} %  {frame}", file=stream)
    for label, summary in out.get("statement_logs", {}).items():
        databases = ", ".join(f"{d} {ms:,.0f}" for d, ms in summary["by_database_ms"].items())
        print(
            f"\nPostgreSQL statements {label}: {summary['total_ms']:,.0f} ms in "
            f"{summary['statements']:,} over {args.pg_statements:g} s (ms per database: "
            f"{databases}); the largest, parameters folded:",
            file=stream,
        )
        for entry in summary["top"]:
            print(
                f"  {entry['ms']:8.1f} ms {entry['count']:6d}  {entry['database']} "
                f"{entry['kind']} {entry['statement']}",
                file=stream,
            )
    load = out["load_avg_end"]
    print(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"on {os.cpu_count()} CPUs",
        file=stream,
    )
    if args.json:
        print(json.dumps(out, ensure_ascii=False, default=str))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen mode; every process and temp dir is gone when this returns."""
    scratch = Path(tempfile.mkdtemp(prefix="xiezuo-pipeline-"))
    args.stacks = []
    args.closers = []
    args.bus = None
    args.profiles = {}
    args.statement_logs = {}
    try:
        if args.mode == "growth":
            return await growth_mode(args, scratch)
        if args.mode == "consumer-only":
            return await consumer_mode(args, scratch)
        return await steps_mode(args, scratch)
    finally:
        for closer in reversed(args.closers):
            with contextlib.suppress(Exception):
                await closer()
        for stack in args.stacks:
            await stack.stop()
        if args.keep:
            log(f"kept {scratch} (logs in */logs)")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _service_names(text: str) -> list[str]:
    """A comma-separated list of our services (py-spy attaches to their processes only)."""
    names = [name for name in text.split(",") if name]
    unknown = sorted(set(names) - set(SERVICES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"not one of our services: {','.join(unknown) or text!r} "
            f"(choose from {','.join(SERVICES)})"
        )
    return names


def _numbers(kind: type) -> Any:
    return lambda text: [kind(part) for part in text.split(",") if part]


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--growth",
        action="store_const",
        dest="mode",
        const="growth",
        help="one step per count of reports already stored",
    )
    mode.add_argument(
        "--consumer-only",
        action="store_const",
        dest="mode",
        const="consumer-only",
        help="apply rate of cases and assessment",
    )
    parser.set_defaults(mode="steps")
    parser.add_argument(
        "--steps",
        type=_numbers(float),
        default=[10, 25, 50, 100, 200, 500, 1000, 2000],
        help="offered reports/s, comma-separated",
    )
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument(
        "--max-minutes", type=float, default=30.0, help="start no step after this long"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="after a step, how long to wait for cases and assessment",
    )
    parser.add_argument("--target-p99-ms", type=float, default=250.0)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--growth-rate", type=float, default=10.0)
    parser.add_argument("--growth-stored", type=_numbers(int), default=[0, 10_000, 100_000])
    parser.add_argument("--events", type=int, default=20_000, help="consumer-only backlog")
    parser.add_argument("--consumer-timeout", type=float, default=600.0)
    parser.add_argument(
        "--ceiling-messages", type=int, default=200_000, help="bus ceiling run size (0 skips it)"
    )
    parser.add_argument("--ceiling-bytes", type=int, default=1024)
    parser.add_argument("--channels", type=int, default=4, help="gRPC connections to intake")
    parser.add_argument("--call-timeout", type=float, default=30.0)
    parser.add_argument("--offset-poll-ms", type=float, default=50.0)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the services during each step; raw profiles into this dir",
    )
    parser.add_argument(
        "--profile-services",
        type=_service_names,
        default=["intake"],
        help=f"comma-separated, of: {','.join(SERVICES)}",
    )
    parser.add_argument(
        "--pg-statements",
        type=float,
        default=0.0,
        help="with --postgres: log every statement's duration for this many seconds in the "
        "middle of each step and print where the server's statement time went",
    )
    parser.add_argument("--json", action="store_true", help="JSON on stdout, tables on stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, print; Ctrl-C or SIGTERM stops every process the run started."""
    args = parse(argv)

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            # Once: a second signal must not cut the shutdown short and orphan processes.
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, lambda: None)
            log("interrupted; stopping everything ...")
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, interrupt)
        return await main_async(args)

    try:
        out = asyncio.run(guarded())
    except asyncio.CancelledError:
        return 130
    except (BenchError, KafkaError, PostgresError) as error:
        log(f"failed: {error}")
        return 1
    print_results(out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
