"""Operator CLI against the running services: happy paths and the errors people will hit."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from services.runtime.localstack import free_port
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
RUN = uuid.uuid4().hex[:8]
COUNTY, ZONE = f"cli-county-{RUN}", f"cli-zone-{RUN}"

REPORT_YAML = f"""
county_id: {COUNTY}
zone_id: {ZONE}
township_id: t-cli
channel: REPORT_CHANNEL_LETTER
subject:
  name: Zhao Official
  post: township deputy head
  unit: Township government
  township_id: t-cli
  cadre_level: CADRE_LEVEL_TOWNSHIP
allegation_categories: [work_style]
content: Banquets paid from public funds.
"""


def _env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    env = stack.cli_env("intake")
    for service in SERVICES:
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = stack.grpc(service).rsplit(":", 1)[1]
    env["XIEZUO_PROFILE"] = str(tmp_path / "profile.json")
    return env


def _xiezuo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(XIEZUO), *args], env=env, capture_output=True, text=True, timeout=60)


def _token(stack: Stack) -> str:
    return stack.token(roles=["intake_officer", "case_officer"], county_id=COUNTY, zone_ids=[ZONE])


def test_submit_then_show_and_list_the_clue(stack: Stack, tmp_path: Path) -> None:
    env = _env(stack, tmp_path)
    report = tmp_path / "report.yaml"
    report.write_text(REPORT_YAML)
    saved = _xiezuo(env, "profile", "set", "--token", _token(stack))
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "profile.json").stat().st_mode & 0o077 == 0

    submitted = _xiezuo(env, "reports", "submit", str(report), "--json")
    assert submitted.returncode == 0, submitted.stderr
    answer = json.loads(submitted.stdout)
    assert len(answer["receipt_code"]) == 16
    clue_id = answer["clue_id"]

    deadline = time.monotonic() + 30
    while True:
        shown = _xiezuo(env, "clues", "show", clue_id, "--json")
        if shown.returncode == 0:
            break
        assert shown.returncode == 6, shown.stderr  # not found yet: still in flight
        assert time.monotonic() < deadline, "the clue never reached cases"
        time.sleep(0.5)
    clue = json.loads(shown.stdout)
    assert (clue["clue_id"], clue["zone_id"], clue["channel"]) == (clue_id, ZONE, "letter")

    listed = _xiezuo(env, "clues", "list", "--county", COUNTY, "--zone", ZONE, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [c["clue_id"] for c in json.loads(listed.stdout)["clues"]] == [clue_id]
    table = _xiezuo(env, "clues", "list", "--county", COUNTY, "--zone", ZONE)
    assert table.returncode == 0 and clue_id in table.stdout


def test_a_malformed_report_lists_every_bad_field(stack: Stack, tmp_path: Path) -> None:
    env = _env(stack, tmp_path)
    report = tmp_path / "bad.yaml"
    report.write_text(f"county_id: {COUNTY}\nzone_id: {ZONE}\nallegation_categories: [Bad]\n")
    result = _xiezuo(env, "reports", "submit", str(report), "--token", _token(stack))
    assert result.returncode == 2
    for field in ("township_id", "channel", "subject", "content", "allegation_categories[0]"):
        assert field in result.stderr
    assert "Traceback" not in result.stderr

    not_yaml = tmp_path / "nonsense.yaml"
    not_yaml.write_text("channel: NO_SUCH_CHANNEL\n")
    result = _xiezuo(env, "reports", "submit", str(not_yaml), "--token", _token(stack))
    assert result.returncode == 2 and "NO_SUCH_CHANNEL" in result.stderr


def test_a_bad_token_and_a_missing_token_are_explained(stack: Stack, tmp_path: Path) -> None:
    env = _env(stack, tmp_path)
    refused = _xiezuo(env, "clues", "show", "clue-x", "--token", "not-a-jwt")
    assert refused.returncode == 4
    assert "token was refused" in refused.stderr and "Traceback" not in refused.stderr
    missing = _xiezuo(env, "clues", "show", "clue-x")
    assert missing.returncode == 4 and "no token" in missing.stderr


def test_an_unreachable_service_is_explained(stack: Stack, tmp_path: Path) -> None:
    env = _env(stack, tmp_path)
    env["XIEZUO_CASES_GRPC_PORT"] = str(free_port())
    result = _xiezuo(env, "clues", "show", "clue-x", "--token", _token(stack), "--timeout", "2")
    assert result.returncode == 3
    assert "not reachable" in result.stderr and "Traceback" not in result.stderr
