"""The first-run demo: its marker, and a failure that never takes the platform down."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from services.demo.driver import Endpoints
from services.demo.first_run import MARKER_FILE, DemoRequest, run_first_demo, should_run
from services.runtime.localstack import free_ports


def test_only_a_state_dir_without_the_marker_runs_the_demo(tmp_path: Path) -> None:
    assert should_run(tmp_path)
    (tmp_path / MARKER_FILE).write_text("{}")
    assert not should_run(tmp_path)


def test_a_failing_demo_says_why_returns_nothing_and_leaves_no_marker(tmp_path: Path) -> None:
    ports = free_ports(3)
    request = DemoRequest(
        state_dir=tmp_path,
        env={"XIEZUO_STATE_DIR": str(tmp_path)},
        endpoints=Endpoints(*(f"127.0.0.1:{port}" for port in ports)),
        reports=5,
        county_file=tmp_path / "missing-county.yaml",
    )
    messages = io.StringIO()
    console = Console(file=messages, width=200)
    assert run_first_demo(request, console=console, out=console) is None
    text = messages.getvalue()
    assert "demo scenario failed" in text
    assert "missing-county.yaml" in text
    assert "still running" in text
    assert should_run(tmp_path)


def test_unreachable_services_fail_the_demo_with_a_clear_message(tmp_path: Path) -> None:
    ports = free_ports(3)
    request = DemoRequest(
        state_dir=tmp_path,
        env={"XIEZUO_STATE_DIR": str(tmp_path)},
        endpoints=Endpoints(*(f"127.0.0.1:{port}" for port in ports)),
        reports=3,
    )
    # The services create their database directory when they start; none runs here.
    (tmp_path / "db").mkdir()
    messages = io.StringIO()
    console = Console(file=messages, width=200)
    assert run_first_demo(request, console=console, out=console) is None
    text = messages.getvalue()
    assert "demo scenario failed" in text
    # The year's plan is defined first (assessment), before any report is submitted.
    assert "the county office's record was refused" in text and "UNAVAILABLE" in text
    assert should_run(tmp_path)
