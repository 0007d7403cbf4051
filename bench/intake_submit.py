"""Intake alone: how many SubmitReport calls a second one process takes, and at what latency.

Run: ``.venv/bin/python bench/intake_submit.py [--clients 16] [--seconds 20]
[--stored 0,10000] [--postgres [--replicas N]]`` (SQLite in a temp dir by default).

For each count of reports already stored, the benchmark starts a fresh database, stores that
many reports on the townships the load uses (inside the duplicate window, inserted directly at
the schema before ``intake_0007`` and then migrated, so the migration's backfill is what indexes
them), starts the intake service as its own process (the composition root's parts over gRPC,
no Kafka: the outbox fills and is not relayed) and drives closed-loop SubmitReport clients for
the given time. One JSON line per count is printed: reports/s accepted, p50 and p99 latency,
errors, the service process's CPU (100 = one core busy) and the near-duplicates the rules
flagged per accepted report (the matching work a crowded township window brings). Timings
are never asserted.

``--replicas N`` (PostgreSQL only: SQLite is one process per service) starts N intake
processes on the one database, each on its own port, and spreads the clients over them
round-robin, as a client balancing per call would; it adds each replica's CPU and the
PostgreSQL server's (postmaster, its backends and the ones already gone) to the line.
``--township-affinity`` sends each replica only its own share of the townships, as a client
routing by township would: a write group locks its townships' gate rows until it commits, so
without it the replicas' groups take turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
# The schema the seeded rows are written at; later migrations must carry them forward.
SEED_REVISION = "intake_0006"
TOWNSHIPS = [f"t-{index}" for index in range(1, 6)]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰海燕"
    "春梅德文亮光成林云飞鹏波辉宇佳晓东晨阳雪琳俊峰荣斌凤翠"
)
CATEGORIES = ["embezzlement", "bribery", "poverty_alleviation_funds", "work_style"]


def _name(rng: random.Random) -> str:
    # Surname and two given characters: few names in a township are one edit apart.
    return rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)


async def _seed(url: str, count: int) -> None:
    """`count` stored reports at SEED_REVISION, spread over the load's townships."""
    from sqlalchemy import column, insert, table
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.intake.domain.duplicates import DuplicateProfile, normalise

    rng = random.Random(7)
    now = datetime.now(UTC)
    names = (
        "report_id clue_id county_id zone_id township_id idempotency_key request_fingerprint "
        "channel subject_name subject_post subject_unit subject_township_id subject_village "
        "subject_cadre_level allegation_categories real_name content_kek_id "
        "content_wrapped_key content_nonce content_ciphertext receipt_hash submitted_by "
        "received_at registered_at receipt_prefix status status_note duplicate_fingerprint"
    )
    report = table("report", *[column(name) for name in names.split()])
    rows: list[dict[str, Any]] = []
    for index in range(count):
        township = TOWNSHIPS[index % len(TOWNSHIPS)]
        name, unit = _name(rng), f"{rng.choice(GIVEN)}村委会"
        categories = [rng.choice(CATEGORIES)]
        received = now - timedelta(days=rng.randint(0, 80), seconds=index)
        profile = DuplicateProfile(
            "c-bench", normalise(name), normalise(unit), township, frozenset(categories), received
        )
        rows.append(
            {
                "report_id": f"rpt-seed-{index}",
                "clue_id": f"clue-seed-{index}",
                "county_id": "c-bench",
                "zone_id": "z-bench",
                "township_id": township,
                "idempotency_key": f"seed-{index}",
                "request_fingerprint": "0" * 64,
                "channel": "letter",
                "subject_name": name,
                "subject_post": "村支书",
                "subject_unit": unit,
                "subject_township_id": township,
                "subject_village": "",
                "subject_cadre_level": "village",
                "allegation_categories": json.dumps(categories),
                "real_name": False,
                "content_kek_id": "seed",
                "content_wrapped_key": b"\0",
                "content_nonce": b"\0",
                "content_ciphertext": b"\0",
                # Never looked up: the code is unknown, only the row's weight matters here.
                "receipt_hash": "scrypt$16384$8$1$00$00",
                "submitted_by": "seed",
                "received_at": received,
                "registered_at": received,
                "receipt_prefix": f"{index % 10_000:04d}",
                "status": "received",
                "status_note": "",
                "duplicate_fingerprint": profile.fingerprint,
            }
        )
    # Each seeded report opened its clue: a repeat of it joins that clue on intake's ledger.
    clue_names = "clue_id county_id zone_id first_report_id registered_at repeat_count priority"
    clue = table("intake_clue", *[column(name) for name in [*clue_names.split(), "progress"]])
    clues = [
        {
            "clue_id": row["clue_id"],
            "county_id": "c-bench",
            "zone_id": "z-bench",
            "first_report_id": row["report_id"],
            "registered_at": row["registered_at"],
            "repeat_count": 0,
            "priority": 10,
            "progress": "",
        }
        for row in rows
    ]
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        for first in range(0, len(rows), 2_000):
            await connection.execute(insert(report), rows[first : first + 2_000])
            await connection.execute(insert(clue), clues[first : first + 2_000])
    await engine.dispose()


async def _prepare(url: str, count: int) -> None:
    from services.runtime.migrate import upgrade

    await asyncio.to_thread(upgrade, "intake", url, SEED_REVISION)
    if count:
        await _seed(url, count)
    await asyncio.to_thread(upgrade, "intake", url)


async def _serve(state_dir: Path, url: str) -> None:
    """The intake parts from its composition root, served over gRPC until killed."""
    from services.intake.app import build
    from services.runtime.grpc.server import GrpcEndpoint
    from services.runtime.settings import PlatformSettings, Settings

    # Errors of the service show on the benchmark's stderr.
    logging.basicConfig(level=logging.WARNING)
    os.environ["XIEZUO_INTAKE_DATABASE_URL"] = url
    settings = Settings("intake", PlatformSettings(state_dir=state_dir, migrate_on_start=False))
    host, grpc_parts, _ = build(settings)
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=grpc_parts.service_names,
        register=grpc_parts.register,
        verifier=host.token_verifier(),
    )
    port = await endpoint.start()
    # As the service runs it: SQLite's log checkpointed beside the writers (runtime/wal.py).
    checkpoints = asyncio.create_task(host.wal.run()) if host.wal is not None else None
    print(port, flush=True)
    await asyncio.Event().wait()
    assert checkpoints is not None  # held until the process is killed


def _request(rng: random.Random, key: str, townships: list[str] = TOWNSHIPS) -> Any:
    from xiezuo.intake.v1 import intake_pb2

    township = rng.choice(townships)
    return intake_pb2.SubmitReportRequest(
        idempotency_key=key,
        county_id="c-bench",
        zone_id="z-bench",
        township_id=township,
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name=_name(rng),
            post="村支书",
            unit=f"{rng.choice(GIVEN)}村委会",
            township_id=township,
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=[rng.choice(CATEGORIES)],
        content="低保金被截留。",
    )


async def _drive(
    ports: list[int], token: str, clients: int, seconds: float, *, affinity: bool = False
) -> dict[str, Any]:
    """Closed-loop clients for `seconds`, client i calling the replica on ports[i % len].

    With `affinity`, replica r is sent only the townships TOWNSHIPS[r::len(ports)].
    """
    from xiezuo.intake.v1 import intake_pb2_grpc

    metadata = (("authorization", f"Bearer {token}"),)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    try:
        stubs = [intake_pb2_grpc.IntakeServiceStub(channel) for channel in channels]
        # One warm-up call each: connection set-up and first-use imports are not the load.
        for number, stub in enumerate(stubs):
            warm_up = _request(random.Random(number), f"warm-up-{number}")
            await stub.SubmitReport(warm_up, metadata=metadata)
        deadline = time.perf_counter() + seconds

        async def client(number: int) -> None:
            replica = number % len(stubs)
            stub = stubs[replica]
            townships = TOWNSHIPS[replica :: len(stubs)] if affinity else TOWNSHIPS
            rng = random.Random(number)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await stub.SubmitReport(
                        _request(rng, uuid.uuid4().hex, townships), metadata=metadata, timeout=60
                    )
                except grpc.aio.AioRpcError as failed:
                    errors[failed.code().name] = errors.get(failed.code().name, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client(number) for number in range(clients)))
        elapsed = time.perf_counter() - began
    finally:
        for channel in channels:
            await channel.close()
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {
        "accepted": len(latencies),
        "reports_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50) if ordered else None,
        "p99_ms": pct(0.99) if ordered else None,
        "mean_ms": round(1000 * statistics.fmean(ordered), 1) if ordered else None,
        "errors": errors,
    }


async def _count_flagged(url: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.connect() as connection:
        flagged = (await connection.execute(text("SELECT count(*) FROM duplicate_candidate"))).one()
    await engine.dispose()
    return int(flagged[0])


def _postgres_pids(cluster: Any) -> list[int]:
    """The cluster's postmaster and its live backends (exited ones count in the postmaster's)."""
    from pipeline import _children  # bench/ is on the path: this file's directory

    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])
    return [postmaster, *_children(postmaster)]


def _token(state_dir: Path) -> str:
    from services.runtime.settings import PlatformSettings
    from services.runtime.tokens import Principal, TokenIssuer, ensure_dev_keypair

    platform = PlatformSettings(state_dir=state_dir)
    private, _ = ensure_dev_keypair(state_dir / "keys")
    issuer = TokenIssuer(
        private.read_bytes(), issuer=platform.token_issuer, audience=platform.token_audience
    )
    principal = Principal(
        subject="bench-officer",
        roles=frozenset({"intake_officer"}),
        county_id="c-bench",
        zone_ids=("z-bench",),
    )
    return issuer.issue(principal, ttl=timedelta(hours=2))


async def _one(stored: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    state_dir = work / f"state-{stored}"
    state_dir.mkdir()
    if args.postgres:
        url = await args.cluster.acreate_database(f"intake_bench_{uuid.uuid4().hex[:8]}")
    else:
        url = f"sqlite+aiosqlite:///{state_dir / 'intake.sqlite3'}"
    started = time.perf_counter()
    await _prepare(url, stored)
    prepared = time.perf_counter() - started
    from pipeline import cpu_seconds  # the same /proc reading as the pipeline's columns

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    servers: list[asyncio.subprocess.Process] = []
    try:
        ports = []
        # One after another: the first makes the state dir's keys, the others read them.
        for _ in range(args.replicas):
            server = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--serve",
                str(state_dir),
                url,
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
            servers.append(server)
            assert server.stdout is not None
            line = await server.stdout.readline()
            if not line:
                raise RuntimeError("an intake server exited before it was ready")
            ports.append(int(line))
        cpu_before = [cpu_seconds([server.pid]) for server in servers]
        postgres_before = cpu_seconds(_postgres_pids(args.cluster)) if args.postgres else 0.0
        token = _token(state_dir)
        started_at, own_before = time.perf_counter(), time.process_time()
        result = await _drive(
            ports, token, args.clients, args.seconds, affinity=args.township_affinity
        )
        elapsed = time.perf_counter() - started_at
        # The clients share the machine's cores with the servers.
        result["bench_cpu_pct"] = round(100 * (time.process_time() - own_before) / elapsed)
        replica_cpu = [
            round(100 * (cpu_seconds([server.pid]) - before) / elapsed)
            for server, before in zip(servers, cpu_before, strict=True)
        ]
        result["server_cpu_pct"] = sum(replica_cpu)
        if args.replicas > 1:
            result["replica_cpu_pct"] = replica_cpu
        if args.postgres:
            postgres = cpu_seconds(_postgres_pids(args.cluster)) - postgres_before
            result["postgres_cpu_pct"] = round(100 * postgres / elapsed)
    finally:
        for server in servers:
            server.terminate()
            await server.wait()
    # Near-duplicates the rules flagged per accepted report: matching work that grows with
    # how crowded the township's window is, not with the history outside it.
    flagged = await _count_flagged(url)
    result["flagged_per_report"] = round(flagged / max(1, result["accepted"]), 2)
    return {
        "stored": stored,
        "clients": args.clients,
        "replicas": args.replicas,
        "township_affinity": args.township_affinity,
        "seconds": args.seconds,
        "database": "postgres" if args.postgres else "sqlite",
        "prepare_s": round(prepared, 1),
        **result,
    }


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as scratch:
        work = Path(scratch)
        if args.postgres:
            from services.runtime.localstack import PostgresCluster

            args.cluster = PostgresCluster()
            await args.cluster.astart()
        try:
            for stored in args.stored:
                print(json.dumps(await _one(stored, args, work)), flush=True)
        finally:
            if args.postgres:
                await args.cluster.astop()


def main() -> None:
    """Parse the options and run (or serve, when started as the server process)."""
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        asyncio.run(_serve(Path(sys.argv[2]), sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--stored", type=lambda text: [int(part) for part in text.split(",")], default=[0, 10_000]
    )
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--replicas", type=int, default=1, help="intake processes (PostgreSQL)")
    parser.add_argument(
        "--township-affinity",
        action="store_true",
        help="each replica gets its own share of the townships (as routing by township would)",
    )
    args = parser.parse_args()
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.replicas > 1 and not args.postgres:
        parser.error("--replicas above 1 needs --postgres: SQLite is one process per service")
    if args.township_affinity and args.replicas > len(TOWNSHIPS):
        parser.error(
            f"--township-affinity shares {len(TOWNSHIPS)} townships: as many replicas at most"
        )
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
