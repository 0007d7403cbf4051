"""The platform the browser tests drive: `xiezuo up` with the demo county loaded and the console.

One run per test session (a few minutes: Kafka, five services, a small demo year, the console).
To iterate on pages without paying that each time, start one and keep it:

    .venv/bin/python -m tests.browser.platform /tmp/xz-browser   # prints the console URL
    # stop it with Ctrl-C or `kill <its pid>`
    XIEZUO_BROWSER_PLATFORM=/tmp/xz-browser/state/browser-platform.json \
        .venv/bin/pytest tests/browser

A second start on the same directory skips the demo (already loaded) and comes up in seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.runtime.localstack import free_ports
from services.runtime.settings import SERVICES
from services.runtime.tokens import ALL_ZONES, mint_dev_token

REPO_ROOT = Path(__file__).resolve().parents[2]
XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
# Enough for every road of the scenario (it gives the rare ones the earliest reports), and
# cases still open for the inbox; XIEZUO_BROWSER_DEMO_REPORTS overrides it.
DEMO_REPORTS = 30
UP_DEADLINE = 900.0
DESCRIPTION_FILE = "browser-platform.json"
COUNTY_ID = "c-demo"


@dataclass
class Platform:
    """A running platform: where the console and the services listen, and the demo's facts."""

    console_url: str
    state_dir: Path
    kafka_bootstrap: str
    grpc: dict[str, str]
    log_path: Path
    pid: int = 0
    console_metrics: str = ""
    demo: dict[str, Any] = field(default_factory=dict)

    def token(
        self,
        *,
        subject: str,
        roles: list[str],
        zone_ids: list[str] | None = None,
        county_id: str = COUNTY_ID,
    ) -> str:
        """A dev token the services trust (to look facts up over gRPC in a test)."""
        return mint_dev_token(
            key_dir=self.state_dir / "keys",
            subject=subject,
            roles=roles,
            county_id=county_id,
            zone_ids=zone_ids if zone_ids is not None else [ALL_ZONES],
        )

    def save(self) -> Path:
        """Write this description where another session can pick it up."""
        path = self.state_dir / DESCRIPTION_FILE
        data = asdict(self)
        data["state_dir"], data["log_path"] = str(self.state_dir), str(self.log_path)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Platform:
        """A platform another process started (XIEZUO_BROWSER_PLATFORM)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        data["state_dir"], data["log_path"] = Path(data["state_dir"]), Path(data["log_path"])
        return cls(**data)


def up_env(state_dir: Path, ports: list[int]) -> dict[str, str]:
    """The environment of `xiezuo up`: no stray XIEZUO_* settings, free ports for everything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XIEZUO_", "OTEL_"))}
    env["XIEZUO_STATE_DIR"] = str(state_dir)
    for index, service in enumerate(SERVICES):
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = str(ports[2 * index])
        env[f"XIEZUO_{service.upper()}_METRICS_PORT"] = str(ports[2 * index + 1])
    env["XIEZUO_CONSOLE_HTTP_PORT"] = "0"
    env["XIEZUO_CONSOLE_METRICS_PORT"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(state_dir: Path, *, reports: int | None = None) -> tuple[Platform, subprocess.Popen[str]]:
    """Run `xiezuo up` (demo county on first run) and wait until it says it is up."""
    state_dir.mkdir(parents=True, exist_ok=True)
    reports = reports or int(os.environ.get("XIEZUO_BROWSER_DEMO_REPORTS", DEMO_REPORTS))
    ports = free_ports(2 * len(SERVICES) + 1)
    kafka_port = ports.pop()
    env = up_env(state_dir / "state", ports)
    log_path = state_dir / "up.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(XIEZUO), "up", "--kafka-port", str(kafka_port), "--demo-reports", str(reports)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + UP_DEADLINE
    while "Press Ctrl-C to stop" not in (output := log_path.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"xiezuo up did not come up:\n{output[-4000:]}")
        time.sleep(1.0)
    found = re.search(r"web console: (http://\S+/)", output)
    if found is None:
        stop(process)
        raise RuntimeError(f"xiezuo up printed no console address:\n{output[-4000:]}")
    metrics = re.search(r"metrics (http://\S+/metrics)", output[found.start() :])
    marker = state_dir / "state" / "demo-loaded"
    if not marker.exists():
        stop(process)
        raise RuntimeError(f"the demo county was not loaded:\n{output[-4000:]}")
    platform = Platform(
        console_url=found.group(1),
        console_metrics=metrics.group(1) if metrics else "",
        state_dir=state_dir / "state",
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        grpc={s: f"127.0.0.1:{ports[2 * i]}" for i, s in enumerate(SERVICES)},
        log_path=log_path,
        pid=process.pid,
        demo=json.loads(marker.read_text(encoding="utf-8")),
    )
    return platform, process


def stop(process: subprocess.Popen[str]) -> None:
    """Ctrl-C for `xiezuo up`: services, console and Kafka stop in order."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> None:
    """Start a platform for repeated browser-test runs and keep it until Ctrl-C."""
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.browser.platform STATE_DIR")
    # `kill <pid>` stops it as Ctrl-C does (a background start ignores SIGINT).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    platform, process = start(Path(sys.argv[1]).resolve())
    path = platform.save()
    print(f"console: {platform.console_url}\nXIEZUO_BROWSER_PLATFORM={path}", flush=True)
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(process)


if __name__ == "__main__":
    main()
