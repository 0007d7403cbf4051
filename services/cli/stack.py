"""`xiezuo up`, `serve` and `status`: the platform as local OS processes on a real Kafka node."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.table import Table

from services.cli.client import stdout_console
from services.runtime.settings import SERVICES, STANDALONE_SERVICES, PlatformSettings, Settings

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the stack commands to the CLI."""
    app.command()(serve)
    app.command()(up)
    app.command()(status)


def serve(
    service: Annotated[
        str, typer.Argument(help="intake, cases, staffing, assessment or collaboration")
    ],
) -> None:
    """Run one service in the foreground until SIGINT/SIGTERM."""
    if service not in SERVICES + STANDALONE_SERVICES:
        known = SERVICES + STANDALONE_SERVICES
        raise typer.BadParameter(f"unknown service {service!r}; expected one of {', '.join(known)}")
    settings = Settings(service)
    module = importlib.import_module(f"services.{service}.app")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await module.run(settings, stop)

    asyncio.run(main())


def up(
    kafka_port: Annotated[int, typer.Option(help="Kafka listener port on 127.0.0.1")] = 9092,
    state_dir: Annotated[
        Path | None, typer.Option(help="Where databases, keys and Kafka data live")
    ] = None,
    no_demo: Annotated[
        bool, typer.Option("--no-demo", help="Skip loading the demo county on first run")
    ] = False,
    demo_reports: Annotated[
        int, typer.Option(min=1, help="Reports in the first-run demo year (about 600 a year)")
    ] = 600,
) -> None:
    """Start Kafka, the five services and the web console; on first run, replay a demo year."""
    from services.runtime.localstack.kafka import KafkaError, KafkaNode

    # Ctrl-C and a supervisor's SIGTERM both stop everything in order. Set explicitly: a shell
    # starts a background command with SIGINT ignored, and Python keeps an ignored signal so.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    platform = PlatformSettings()
    state = (state_dir or platform.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    bootstrap = f"127.0.0.1:{kafka_port}"
    console.print(f"[bold]Xiezuo[/bold] state in {state}")
    console.print(f"starting Kafka (KRaft) on {bootstrap} ...")
    node = KafkaNode(state / "kafka", port=kafka_port)
    try:
        node.start()
    except KafkaError as exc:
        console.print(f"[red]Kafka did not start:[/red] {exc}")
        raise typer.Exit(1) from exc
    env = {**os.environ, "XIEZUO_STATE_DIR": str(state), "XIEZUO_KAFKA_BOOTSTRAP": bootstrap}
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        _dev_network(state, env)
        ready: dict[str, dict[str, str]] = {}
        # Service logs go to files, so the terminal stays readable (progress, tables).
        log_dir = state / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            log_file = (log_dir / f"{service}.log").open("a")
            processes[service] = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", "serve", service],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        # The web console: a client of the services, up beside them (its own log file too).
        processes["console"] = subprocess.Popen(
            [sys.executable, "-m", "services.console"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=(log_dir / "console.log").open("a"),
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        for service, process in processes.items():
            if service != "console":
                ready[service] = _await_ready(service, process, timeout=120)
        web = _await_ready("console", processes["console"], timeout=60)
        table = Table(title="Xiezuo is up")
        for column in ("service", "gRPC", "metrics", "log"):
            table.add_column(column)
        table.add_row("kafka", bootstrap, "", str(node.log_path))
        for service, info in ready.items():
            table.add_row(service, info["grpc"], info["metrics"], str(log_dir / f"{service}.log"))
        table.add_row("console", web["url"], web["metrics"], str(log_dir / "console.log"))
        stdout_console().print(table)
        stdout_console().print(
            f"web console: {web['url']} (sign in at {web['url']}sign-in; metrics {web['metrics']})",
            soft_wrap=True,
        )
        if not no_demo:
            _first_run_demo(state, env, ready, demo_reports, web["url"])
        console.print("`xiezuo status` checks health; `xiezuo token --help` mints a dev token.")
        console.print("Press Ctrl-C to stop.")
        _wait_for_interrupt(processes)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red] (service logs are in {state / 'logs'})")
        raise typer.Exit(1) from exc
    finally:
        # A second Ctrl-C (or SIGTERM) must not cut the shutdown short and orphan the services.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("stopping services ...")
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for service, process in processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                console.print(f"{service} did not stop in 30 s; killing it")
                process.kill()
        console.print("stopping Kafka ...")
        node.stop()
        console.print("stopped.")


def _dev_network(state: Path, env: dict[str, str]) -> None:
    # Collaboration loads its counties' signing keys when it starts: made (once) before it.
    from services.demo.network import ensure_dev_network

    imported = ensure_dev_network(state, env)
    if imported is not None:
        console.print(f"collaboration: dev keys made and the network {imported} imported")


def _first_run_demo(
    state: Path,
    env: dict[str, str],
    ready: dict[str, dict[str, str]],
    reports: int,
    console_url: str = "",
) -> None:
    # Imported here so that `serve` (one per service process) never loads the demo.
    from services.demo.driver import Endpoints
    from services.demo.first_run import DemoRequest, run_first_demo, should_run

    if not should_run(state):
        console.print("demo county already loaded (delete demo-loaded in the state dir to redo)")
        return
    endpoints = Endpoints(
        intake=ready["intake"]["grpc"],
        cases=ready["cases"]["grpc"],
        assessment=ready["assessment"]["grpc"],
        staffing=ready["staffing"]["grpc"],
    )
    request = DemoRequest(
        state_dir=state,
        env=env,
        endpoints=endpoints,
        reports=reports,
        collaboration=ready["collaboration"]["grpc"],
        console_url=console_url,
    )
    run_first_demo(request, console=console, out=Console())


def _die_with_parent() -> None:
    # Linux PR_SET_PDEATHSIG: if `xiezuo up` is killed outright, its services get SIGTERM
    # instead of running on without a broker.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)


def _await_ready(service: str, process: subprocess.Popen[str], timeout: float) -> dict[str, str]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            code = process.wait()
            raise RuntimeError(f"{service} exited with code {code} before it was ready")
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and "ready" in message:
                info: dict[str, str] = message["ready"]
                return info
    raise RuntimeError(f"{service} was not ready within {timeout:.0f} s")


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM handled as Ctrl-C: the same orderly stop."""
    raise KeyboardInterrupt


def _wait_for_interrupt(processes: dict[str, subprocess.Popen[str]]) -> None:
    while True:
        for service, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited unexpectedly with code {process.returncode}")
        time.sleep(0.5)


def status(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service")] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Show each service's gRPC health; exits 1 unless all are SERVING."""
    results = asyncio.run(_health_of_all(timeout))
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        table = Table(title="Xiezuo services")
        for column in ("service", "address", "health"):
            table.add_column(column)
        for row in results:
            colour = "green" if row["health"] == "SERVING" else "red"
            table.add_row(row["service"], row["address"], f"[{colour}]{row['health']}[/{colour}]")
        stdout_console().print(table)
    if any(row["health"] != "SERVING" for row in results):
        raise typer.Exit(1)


async def _health_of_all(wait_seconds: float) -> list[dict[str, Any]]:
    return list(
        await asyncio.gather(*(_health(Settings(service), wait_seconds) for service in SERVICES))
    )


async def _health(settings: Settings, wait_seconds: float) -> dict[str, Any]:
    address = settings.grpc_address
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=wait_seconds
            )
            health = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            health = f"UNREACHABLE ({exc.code().name})"
    return {"service": settings.service, "address": address, "health": health}
