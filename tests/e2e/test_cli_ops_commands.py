"""Operator commands over the running stack: follow a report to its drawn team and the ranking."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.runtime.localstack import free_port
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT, Stack
from tests.integration.helpers import eventually_sync

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
COUNTY, ZONE, TOWNSHIP = "c-demo", "z-1", "t-01"
EVENTUAL = 60.0

REPORT_YAML = f"""
county_id: {COUNTY}
zone_id: {ZONE}
township_id: {TOWNSHIP}
channel: REPORT_CHANNEL_LETTER
subject:
  name: Qian Director
  post: village committee director
  unit: Feng Erqu village committee
  township_id: {TOWNSHIP}
  village: Feng Erqu
  cadre_level: CADRE_LEVEL_VILLAGE
allegation_categories: [embezzlement]
content: Relief grain was sold and the money kept by the director.
"""

# Each operator command that talks to a service, with arguments that reach the service.
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "reports status": ("intake", ["reports", "status", "1234567890123456", "--county", COUNTY]),
    "clues dispose": ("cases", ["clues", "dispose", "clue-x", "close"]),
    "cases show": ("cases", ["cases", "show", "clue-x"]),
    "cases advance": ("cases", ["cases", "advance", "clue-x", "approve_disposal"]),
    "draws explain": ("staffing", ["draws", "explain", "draw-x"]),
    "draws replay": ("staffing", ["draws", "replay", "draw-x"]),
    "ranking": ("assessment", ["ranking", "2026Q1", "--county", COUNTY]),
}


def _env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    env = stack.cli_env("staffing")
    for service in SERVICES:
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = stack.grpc(service).rsplit(":", 1)[1]
    env["XIEZUO_PROFILE"] = str(tmp_path / "profile.json")
    return env


def _xiezuo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(XIEZUO), *args], env=env, capture_output=True, text=True, timeout=120
    )


def _ok(env: dict[str, str], *args: str) -> Any:
    """Run a command with --json; its parsed answer."""
    result = _xiezuo(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class People:
    """Tokens of the demo county's people, as the services verify them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def token(self, subject: str, *roles: str) -> list[str]:
        minted = self.stack.token(roles=roles, county_id=COUNTY, zone_ids=[ZONE], subject=subject)
        return ["--token", minted]


@pytest.fixture(scope="module")
def demo_county(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The demo registry in staffing, so the team draw succeeds."""
    env = _env(stack, tmp_path_factory.mktemp("import"))
    loaded = _xiezuo(env, "staffing", "import", str(REPO_ROOT / "deploy" / "demo" / "county.yaml"))
    assert loaded.returncode == 0, loaded.stderr


def test_a_report_is_followed_from_receipt_to_drawn_team_and_ranking(
    stack: Stack, demo_county: None, tmp_path: Path
) -> None:
    env, people = _env(stack, tmp_path), People(stack)
    front_desk = people.token("p-intake", "intake_officer")
    deputy, chief = people.token("p-010", "deputy_chief"), people.token("p-004", "zone_chief")
    report = tmp_path / "report.yaml"
    report.write_text(REPORT_YAML)

    receipt = _ok(env, "reports", "submit", str(report), *front_desk)
    clue_id = receipt["clue_id"]
    status = _ok(env, "reports", "status", receipt["receipt_code"], "--county", COUNTY, *front_desk)
    assert status["status"].startswith("REPORT_STATUS_")
    human = _xiezuo(
        env, "reports", "status", receipt["receipt_code"], "--county", COUNTY, *front_desk
    )
    assert human.returncode == 0 and "status" in human.stdout, human.stderr

    def registered() -> bool | None:
        shown = _xiezuo(env, "cases", "show", clue_id, "--json", *chief)
        assert shown.returncode in (0, 6), shown.stderr
        return True if shown.returncode == 0 else None

    eventually_sync(registered, "the clue registered in cases", within=EVENTUAL)

    proposed = _ok(env, "clues", "dispose", clue_id, "preliminary_verification", *deputy)
    assert proposed["case"]["stage"] == "disposal_proposed"
    key = ["--idempotency-key", f"approve-{clue_id}"]
    approved = _xiezuo(env, "cases", "advance", clue_id, "approve_disposal", *key, *chief)
    assert approved.returncode == 0, approved.stderr
    assert "verification" in approved.stdout
    again = _ok(env, "cases", "advance", clue_id, "approve_disposal", *key, *chief)
    assert again["replayed"] and again["case"]["stage"] == "verification"

    def drawn() -> str | None:
        case = _ok(env, "cases", "show", clue_id, *chief)
        for step in case.get("history", []):
            if step.get("event") == "TeamAssigned":
                draw_id: str = json.loads(step["detail_json"])["draw_id"]
                return draw_id
        return None

    draw_id = eventually_sync(drawn, "the verification team drawn by staffing", within=EVENTUAL)
    table = _xiezuo(env, "cases", "show", clue_id, *chief)
    assert table.returncode == 0 and "TeamAssigned" in table.stdout, table.stderr

    explained = _ok(env, "draws", "explain", draw_id, *chief)["draw"]
    assert explained["case_id"] == clue_id and len(explained["member_person_ids"]) == 2
    human = _xiezuo(env, "draws", "explain", draw_id, *chief)
    assert human.returncode == 0 and explained["seed"] in human.stdout, human.stderr
    replayed = _ok(env, "draws", "replay", draw_id, *chief)
    assert replayed["matches"] and replayed["seed_genuine"] and replayed["hash_intact"]
    assert replayed["recomputed_member_person_ids"] == explained["member_person_ids"]

    now = datetime.now(UTC)
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    leader = people.token("e2e-leader", "county_leadership")
    ranked = _ok(env, "ranking", quarter, "--county", COUNTY, *leader)
    assert "rules_version" in ranked
    human = _xiezuo(env, "ranking", quarter, "--county", COUNTY, "--level", "township", *leader)
    assert (
        human.returncode == 0 and "township ranking" in human.stdout and "t-01" in human.stdout
    ), human.stderr


def test_a_step_the_rules_refuse_is_explained(stack: Stack, tmp_path: Path) -> None:
    env, people = _env(stack, tmp_path), People(stack)
    refused = _xiezuo(
        env, "cases", "advance", "clue-x", "no_such_action", *people.token("p-004", "zone_chief")
    )
    assert refused.returncode in (2, 6), refused.stderr
    assert "Traceback" not in refused.stderr
    bad = _xiezuo(env, "cases", "advance", "c", "approve_decision", "--sanction", "warning")
    assert bad.returncode == 2 and "TRACK:KIND" in bad.stderr


def test_back_dating_a_step_needs_the_grant_and_a_past_moment(stack: Stack, tmp_path: Path) -> None:
    env, people = _env(stack, tmp_path), People(stack)
    step = ["cases", "advance", "clue-x", "approve_disposal", "--effective-at"]
    plain = _xiezuo(env, *step, "2026-03-05T09:30:00", *people.token("p-004", "zone_chief"))
    assert plain.returncode == 5 and "back_entry" in plain.stderr, plain.stderr
    clerk = people.token("p-004", "zone_chief", "back_entry")
    future = _xiezuo(env, *step, f"{datetime.now(UTC).year + 1}-01-01T00:00:00", *clerk)
    assert future.returncode == 2 and "effective_at" in future.stderr, future.stderr
    assert "Traceback" not in plain.stderr + future.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_token_is_explained(stack: Stack, tmp_path: Path, command: str) -> None:
    _, args = COMMANDS[command]
    result = _xiezuo(_env(stack, tmp_path), *args, "--token", "not-a-jwt")
    assert result.returncode == 4, result.stderr
    assert "token was refused" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreachable_service_is_explained(stack: Stack, tmp_path: Path, command: str) -> None:
    service, args = COMMANDS[command]
    env = _env(stack, tmp_path)
    env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = str(free_port())
    token = stack.token(roles=["zone_chief"], county_id=COUNTY, zone_ids=[ZONE])
    result = _xiezuo(env, *args, "--token", token, "--timeout", "2")
    assert result.returncode == 3, result.stderr
    assert "not reachable" in result.stderr and "Traceback" not in result.stderr
