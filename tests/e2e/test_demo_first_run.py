"""`xiezuo up` on first run replays a small demo year, ranks the zones, and keeps running."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.demo.scenario import FILED_FATES
from services.runtime.localstack import free_ports
from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.kafka

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
DEMO_DEADLINE = 420.0
# Small enough to run in a few minutes; the scenario gives every rare road to its earliest
# reports, so even 30 walk them all.
REPORTS = 30


def _env(state: Path, ports: list[int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(state)
    for index, service in enumerate(SERVICES):
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = str(ports[2 * index])
        env[f"XIEZUO_{service.upper()}_METRICS_PORT"] = str(ports[2 * index + 1])
    # The web console on a free port of its own (8080 may be taken by another run).
    env["XIEZUO_CONSOLE_HTTP_PORT"] = "0"
    env["XIEZUO_CONSOLE_METRICS_PORT"] = "0"
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


# Roads the demo year must walk (issue 15), each counted from the steps cases accepted, with
# the scripted fates that walk it.
_LETTERS = ("inquiry", "inquiry_escalated")
_TRANSFERS = ("case_transferred", "case_retained")
_APPEALS = ("case_appealed", "case_appealed_twice")
REQUIRED_ROADS = {
    "letters of inquiry sent (函询)": _LETTERS,
    "inquiries escalated to verification": ("inquiry_escalated",),
    "verifications ended without filing (了结/谈话提醒/移交)": ("verified_not_filed",),
    "verifications ended stored pending (暂存待查)": ("verified_stored",),
    "transfers to the procuratorate with 双开": _TRANSFERS,
    "returned for supplementary investigation": _TRANSFERS,
    "prosecuted after transfer": _TRANSFERS,
    "retentions (留置)": ("case_retained",),
    "retentions extended once": ("case_retained",),
    "investigations extended one level up": ("case_retained",),
    "appeals filed by the sanctioned person": _APPEALS,
    "first reviews (复审, county commission)": _APPEALS,
    "second reviews (复核, city commission)": ("case_appealed_twice",),
    "outcomes changed on appeal": _APPEALS,
    "organisational handling alone (组织处理)": ("case_organisational",),
}
# Ids of the demo county's zones, townships and staff (names must show instead).
_IDS = re.compile(r"(?<![\w-])(z-\d|t-\d\d|p-\d{3})(?![\w-])")
# An id shown on its own, not in parentheses beside its name ("第一协作区 (z-1)" is fine).
_BARE_IDS = re.compile(r"(?<![\w(-])(z-\d|t-\d\d|p-\d{3})(?![\w-])")


def _check_every_road_was_walked(marker: dict[str, Any], output: str) -> None:
    roads = marker["roads"]
    rows = json.loads(Path(str(marker["cases"])).read_text(encoding="utf-8"))
    # The long roads are given to the year's earliest reports; only early in a year (the
    # replay runs from 1 January to today) may one still be in progress, never refused.
    in_progress = {row["fate"] for row in rows if row["waiting"]}
    unwalked = {
        road: fates
        for road, fates in REQUIRED_ROADS.items()
        if not roads.get(road, 0) and in_progress.isdisjoint(fates)
    }
    assert not unwalked, (unwalked, roads)
    office = marker["office"]
    # Training and attendance each quarter so far, the plan, the campaign, marks for staff.
    quarters = (datetime.now(UTC).month - 1) // 3 + 1
    assert office["training_records"] >= 80 * (quarters - 1), office
    assert office["attendance_days"] >= office["training_records"], office
    assert office["plan_revision"] >= 1 and office["campaign"], office
    assert office["qualitative_marks"] > 0 or quarters == 1, office
    assert office["rectifications_opened"] > office["rectifications_closed"] > 0, office
    # Counted by assessment from the services' own events: a few breached deadlines, the
    # inspection tour's items, the transfers, training time and all four forms.
    kpis = marker["kpis"]
    for kpi in (
        "deadlines_breached",
        "rectification_opened",
        "rectification_closed",
        "transfers_to_procuratorate",
        "training_minutes",
        "people_sanctioned",
    ):
        assert kpis.get(kpi, 0) > 0, (kpi, kpis)
    assert kpis["deadlines_breached"] < marker["clues"] // 2, kpis
    forms = marker["figures"]["four_forms"]
    # Every form of the year, unless a filed case that may still give the missing one is in
    # progress: the sanctioned road is a common one, so in a small run it may fall only on
    # the year's latest reports, whose steps are not due yet (as on 2026-12-05).
    deciding = in_progress & FILED_FATES
    assert len(forms) == 4 and (all(forms) or deciding), (marker["figures"], in_progress)
    assert "beside a county's year" in output and "approximate reference profile" in output


def _check_names_not_ids(output: str, report_html: str) -> None:
    demo_output = output[output.index("demo: loading") :]
    assert not _IDS.search(demo_output), _IDS.findall(demo_output)[:10]
    assert "第一协作区" in demo_output
    # The year's report names zones, townships and staff too (assessment's export), an id
    # only beside its name.
    for name in ("第一协作区", "二曲镇", "谢娜"):
        assert name in report_html, name
    assert not _BARE_IDS.search(report_html), _BARE_IDS.findall(report_html)[:10]


def _check_rectifications(env: dict[str, str], token: str, marker: dict[str, Any]) -> None:
    """The inspection tour's items are on cases' own list, some closed."""
    port = env["XIEZUO_CASES_GRPC_PORT"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        page = stub.ListRectifications(
            cases_pb2.ListRectificationsRequest(county_id="c-demo", page_size=200),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=30,
        )
    items = list(page.items)
    assert len(items) == marker["office"]["rectifications_opened"]
    sources = {item.source for item in items}
    assert cases_pb2.RECTIFICATION_SOURCE_INSPECTION_TOUR in sources
    assert (
        sum(1 for item in items if item.status == "closed")
        == (marker["office"]["rectifications_closed"])
    )


def _check_staff_records(env: dict[str, str], token: str) -> None:
    """A township staff member's scorecard counts the quarter's training and attendance."""
    port = env["XIEZUO_ASSESSMENT_GRPC_PORT"]
    today = datetime.now(UTC)
    if today.month < 4:
        return  # the first quarter has not ended: no training day and marks to count yet
    quarter = f"{today.year}Q1"
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = assessment_pb2_grpc.AssessmentServiceStub(channel)
        counts: dict[str, int] = {}
        for person in ("p-029", "p-030", "p-031"):
            card = stub.GetScorecard(
                assessment_pb2.GetScorecardRequest(
                    county_id="c-demo",
                    level=assessment_pb2.LEVEL_PERSON,
                    subject_id=person,
                    quarter=quarter,
                ),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            ).scorecard
            for count in card.counts:
                counts[count.kpi] = counts.get(count.kpi, 0) + count.value
            if person == "p-029":
                # The assessors marked the quarter (定性评价).
                assert card.qualitative > 0, card
    assert counts.get("attendance_days", 0) > 0, counts
    assert counts.get("training_minutes", 0) > 0, counts


def _check_letters_between_counties(
    env: dict[str, str], marker: dict[str, Any], output: str, report_html: str
) -> None:
    """Letters went both ways; the handed-over clues arrived, moved and their trail came back."""
    letters = marker["letters"]
    assert letters is not None, output[-3000:]
    assert (letters["sent"], letters["answered"], letters["declined"]) == (5, 4, 1), letters
    assert letters["median_seconds"] is not None and letters["median_seconds"] >= 0, letters
    # Each accepted letter got a team from the neighbour's own staff.
    assert sorted(letters["teams"]) == [0, 1, 2, 2, 2], letters
    assert "letters to 青峪县: 5 sent, 4 answered, 1 declined" in output
    # The joint investigation: a team from both pools, closed, both teams freed.
    assert "team of 2 from 演示县 + 2 from 青峪县, closed (concluded)" in output, output[-3000:]
    # Entered on their paper dates (补录), days after their case began to be worked: spread
    # over the year's quarters, not all on the run day.
    approved = [datetime.fromisoformat(at) for at in letters["approved_at"] if at]
    assert len(approved) == 5, letters
    quarters = {(at.month - 1) // 3 for at in approved}
    today = datetime.now(UTC)
    assert len(quarters) >= min(2, (today.month - 1) // 3 + 1), letters
    assert "entered on their paper dates, approved in Q" in output
    # 青峪县 asked 演示县 too (about the clues it took over), and was answered.
    assert (letters["received"], letters["answered_by_us"]) == (2, 2), letters
    assert "letters from 青峪县: 2 received, 2 answered" in output
    # The neighbour's officers worked both clues: each trail here has the steps they reported.
    handed = {h["mode"]: h for h in letters["handed_over"]}
    assert set(handed) == {"transfer", "designation"}, letters
    assert handed["transfer"]["trail"][:2] == ["disposal_proposed", "inquiry"], handed
    assert (handed["transfer"]["stage"], handed["designation"]["stage"]) == (
        "inquiry",
        "verification",
    ), handed
    assert handed["designation"]["trail"][:2] == ["disposal_proposed", "verification"], handed
    assert "our read-only trail: disposal_proposed → inquiry" in output
    # The year's report was fetched after the letters: its help table has the county's line.
    assert "Help between counties" in report_html
    assert "<tr><td>county</td><td>5</td><td>4</td><td>2</td>" in report_html
    neighbour = _xiezuo(
        env,
        "token",
        "--subject",
        "e2e",
        "--county",
        "c-qingyu",
        "--zone",
        "*",
        "--role",
        "county_leadership",
    ).strip()
    asked = json.loads(
        _xiezuo(
            env,
            "letters",
            "list",
            "--county",
            "c-qingyu",
            "--direction",
            "inbound",
            "--json",
            "--token",
            neighbour,
        )
    )
    assert len(asked["letters"]) == 5, asked
    # The clue transfer and the city's designation each register a clue in the neighbour's
    # cases (its id is the transfer id).
    deadline = time.monotonic() + 60
    while True:
        clues = json.loads(
            _xiezuo(env, "clues", "list", "--county", "c-qingyu", "--json", "--token", neighbour)
        )["clues"]
        arrived = {clue["clue_id"] for clue in clues}
        if {letters["transfer_id"], letters["designation_id"]} <= arrived:
            break
        assert time.monotonic() < deadline, clues
        time.sleep(1)


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
        # The summary ends by saying where to look at the year in the web console.
        assert re.search(r"Sign in to the web console at http://\S+/sign-in", output)
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
        # The ranking names every zone by its name, and worked cases set the zones apart.
        ranking_lines = [line for line in output.splitlines() if "协作区 │" in line]
        assert len(ranking_lines) == 6, output[-3000:]
        scores = {line.split("│")[3].strip() for line in ranking_lines}
        assert len(scores) > 1, output[-3000:]
        _check_every_road_was_walked(marker, output)
        _check_names_not_ids(output, report.read_text(encoding="utf-8"))
        _check_rectifications(env, token, marker)
        _check_staff_records(env, token)
        _check_letters_between_counties(env, marker, output, report.read_text(encoding="utf-8"))
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
