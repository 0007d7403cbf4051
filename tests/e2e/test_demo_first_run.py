"""`xiezuo up` on first run replays a small demo year, ranks the zones, and keeps running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.runtime.localstack import free_ports
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.kafka

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
DEMO_DEADLINE = 420.0
REPORTS = 30


def _env(state: Path, ports: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(state)
    for index, service in enumerate(SERVICES):
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = str(ports[2 * index])
        env[f"XIEZUO_{service.upper()}_METRICS_PORT"] = str(ports[2 * index + 1])
    return env


def _xiezuo(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(XIEZUO), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _stages(env: dict[str, str], token: str) -> dict[str, str]:
    """Every case of the demo county and its stage, straight from cases over gRPC."""
    port = env["XIEZUO_CASES_GRPC_PORT"]
    stages: dict[str, str] = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        page_token = ""
        while True:
            page = stub.ListCases(
                cases_pb2.ListCasesRequest(
                    county_id="c-demo", page_size=200, page_token=page_token
                ),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
            stages.update((case.case_id, case.stage) for case in page.cases)
            page_token = page.next_page_token
            if not page_token:
                return stages


def _check_cases_followed_their_script(marker: dict[str, object], stages: dict[str, str]) -> None:
    rows = json.loads(Path(str(marker["cases"])).read_text(encoding="utf-8"))
    assert len(rows) == REPORTS
    for row in rows:
        where = f"{row['clue_id']} ({row['fate']}): {row['stuck']}"
        assert stages[row["clue_id"]] == row["stage"], where
        if row["stuck"]:
            # Only staffing may stop a clue short (a team nobody could fill), on its road.
            assert "team" in row["stuck"], where
            assert row["stage"] in row["road"], where
        elif row["waiting"]:
            # A recent clue whose next step falls after today: in progress, on its road.
            assert "after today" in row["waiting"], where
            assert row["stage"] in row["road"], where
        else:
            assert row["stage"] == row["planned_stage"], where
    reached = [row for row in rows if not row["stuck"] and not row["waiting"]]
    assert len(reached) > REPORTS // 2, rows
    assert any(row["stage"] == "decided" for row in reached), rows
    assert marker["stuck"] == sum(1 for row in rows if row["stuck"])
    assert marker["in_progress"] == sum(1 for row in rows if row["waiting"])


def test_first_up_replays_the_demo_and_prints_the_ranking(tmp_path: Path) -> None:
    ports = free_ports(2 * len(SERVICES) + 1)
    kafka_port = ports.pop()
    state = tmp_path / "state"
    env = _env(state, ports)
    log_path = tmp_path / "up.log"
    up = subprocess.Popen(
        [str(XIEZUO), "up", "--kafka-port", str(kafka_port), "--demo-reports", str(REPORTS)],
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEMO_DEADLINE
        while "Press Ctrl-C to stop" not in log_path.read_text(errors="replace"):
            assert up.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        output = log_path.read_text(errors="replace")
        assert "demo scenario failed" not in output, output[-3000:]
        assert "Zone ranking" in output, output[-3000:]
        report_line = next(line for line in output.splitlines() if "HTML report:" in line)
        report = Path(report_line.split("HTML report:", 1)[1].strip())
        assert report.is_file() and "<html" in report.read_text(encoding="utf-8").lower()

        marker = json.loads((state / "demo-loaded").read_text())
        assert marker["reports"] == REPORTS
        # Entered on their paper dates, the year's reports spread over its quarters.
        today = datetime.now(UTC)
        assert len(marker["quarters"]) >= min(2, (today.month - 1) // 3 + 1), marker
        assert sorted(marker["at_risk"]) == [f"z-{n}" for n in range(1, 7)], marker
        assert "deadlines at risk now:" in output
        # The offices answered their reporters on paper too (acceptance within days).
        assert marker["accepted"] > REPORTS // 2, marker
        assert marker["clues"] == REPORTS
        # Every scenario report reached cases as a clue of the demo county, in every zone.
        token = _xiezuo(
            env,
            "token",
            "--subject",
            "e2e",
            "--county",
            "c-demo",
            "--zone",
            "*",
            "--role",
            "county_leadership",
        ).strip()
        clues = json.loads(
            _xiezuo(
                env,
                "clues",
                "list",
                "--county",
                "c-demo",
                "--page-size",
                "500",
                "--json",
                "--token",
                token,
            )
        )["clues"]
        assert len(clues) == REPORTS
        assert {clue["zone_id"] for clue in clues} == {f"z-{n}" for n in range(1, 7)}
        # Every clue went through cases' workflow as far as its script (or staffing) allowed.
        _check_cases_followed_their_script(marker, _stages(env, token))
        assert "cases by stage" in output
        # The ranking names every zone, and worked cases set the zones apart.
        ranking_lines = [line for line in output.splitlines() if "│ z-" in line]
        assert len(ranking_lines) == 6, output[-3000:]
        scores = {line.split("│")[3].strip() for line in ranking_lines}
        assert len(scores) > 1, output[-3000:]
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise
    output = log_path.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "stopped." in output
