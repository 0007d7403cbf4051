"""The commands added for every RPC, against the running services, in a county of their own.

Each domain's commands are run for real (`--json` parsed, a table or two read), and each group
shows the exit codes a script branches on: 2 INVALID_ARGUMENT, 5 PERMISSION_DENIED, 6 NOT_FOUND.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.runtime.settings import SERVICES
from tests.e2e.conftest import REPO_ROOT, Stack
from tests.integration.helpers import eventually_sync

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
RUN = uuid.uuid4().hex[:6]
COUNTY = f"c-cli{RUN}"
EVENTUAL = 60.0
EXIT_INVALID, EXIT_DENIED, EXIT_NOT_FOUND = 2, 5, 6


def rid(short: str) -> str:
    """The demo county's id (`z-1`, `t-01`, `p-004`) as it is in this test's county."""
    kind, number = short.split("-", 1)
    return f"{kind}-{RUN}-{number}"


ZONE, TOWNSHIP, OTHER_TOWNSHIP = rid("z-1"), rid("t-01"), rid("t-02")
COMMISSION_HEAD, LEADER, CHIEF, DEPUTY = rid("p-001"), rid("p-002"), rid("p-004"), rid("p-010")
INTAKE_OFFICER, CUSTODIAN, ASSESSOR = rid("p-022"), rid("p-025"), rid("p-027")
MEMBER = rid("p-030")


def _env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    env = stack.cli_env("staffing")
    for service in SERVICES:
        env[f"XIEZUO_{service.upper()}_GRPC_PORT"] = stack.grpc(service).rsplit(":", 1)[1]
    env["XIEZUO_PROFILE"] = str(tmp_path / "profile.json")
    return env


class Cli:
    """`xiezuo` as one person of the county runs it."""

    def __init__(self, stack: Stack, env: dict[str, str]) -> None:
        self.stack, self.env = stack, env

    def run(self, who: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
        """The command's outcome, as `who` (subject, roles...)."""
        subject, *roles = who
        token = self.stack.token(roles=roles, county_id=COUNTY, zone_ids=[ZONE], subject=subject)
        return subprocess.run(
            [str(XIEZUO), *args, "--token", token],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, who: tuple[str, ...], *args: str) -> Any:
        """The command's --json answer; it must succeed."""
        result = self.run(who, *args, "--json")
        assert result.returncode == 0, (args, result.stderr)
        return json.loads(result.stdout)

    def refused(self, code: int, who: tuple[str, ...], *args: str) -> str:
        """Run a command that must exit with `code`; its stderr."""
        result = self.run(who, *args)
        assert result.returncode == code, (args, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == "", result.stdout
        return result.stderr


def _quarter(moment: datetime) -> str:
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


@pytest.fixture(scope="module")
def cli(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """The demo registry under fresh ids in a county of this module's own, loaded in staffing."""
    scratch = tmp_path_factory.mktemp("cli-every-operation")
    env = _env(stack, scratch)
    demo = (REPO_ROOT / "deploy" / "demo" / "county.yaml").read_text(encoding="utf-8")
    county = re.sub(r"(?<![\w-])([ztpv])-(\d+)", rf"\1-{RUN}-\2", demo).replace("c-demo", COUNTY)
    county_file = scratch / "county.yaml"
    county_file.write_text(county, encoding="utf-8")
    loaded = subprocess.run(
        [str(XIEZUO), "staffing", "import", str(county_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    return Cli(stack, env)


def _report(cli: Cli, tmp_path: Path, subject: str, *, real_name: bool = False) -> dict[str, Any]:
    reporter = (
        "reporter: {full_name: Sun Reporter, id_number: '110101199001011234', phone: '13800000000'}"
        if real_name
        else ""
    )
    path = tmp_path / f"report-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        f"""
county_id: {COUNTY}
zone_id: {ZONE}
township_id: {TOWNSHIP}
channel: REPORT_CHANNEL_LETTER
subject: {{name: {subject}, post: village director, unit: village committee,
  township_id: {TOWNSHIP}, cadre_level: CADRE_LEVEL_VILLAGE}}
allegation_categories: [embezzlement]
content: Relief funds for {subject}'s village were kept by the director.
{reporter}
"""
    )
    answer: dict[str, Any] = cli.ok(
        (INTAKE_OFFICER, "intake_officer"), "reports", "submit", str(path)
    )
    return answer


def test_report_handling_and_the_identity_reveal(cli: Cli, tmp_path: Path) -> None:
    desk, portal = (INTAKE_OFFICER, "intake_officer"), ("portal", "reporter_portal")
    report = _report(cli, tmp_path, "Qian Director", real_name=True)
    report_id, receipt = report["report_id"], report["receipt_code"]

    accepted = cli.ok(desk, "reports", "accept", report_id, "--reason", "within our remit")
    assert accepted["status"] == "REPORT_STATUS_ACCEPTED"
    other = _report(cli, tmp_path, "Li Accountant")["report_id"]
    assert "no_substance" in cli.refused(
        EXIT_INVALID, desk, "reports", "reject", other, "--ground", "boring", "--reason", "x"
    )
    rejected = cli.ok(
        desk,
        "reports",
        "reject",
        other,
        "--ground",
        "no_substance",
        "--reason",
        "nothing checkable",
    )
    assert rejected["status"] == "REPORT_STATUS_NOT_ACCEPTED"
    forwarded = _report(cli, tmp_path, "Zhou Secretary")["report_id"]
    answer = cli.ok(desk, "reports", "forward", forwarded, "--to", "municipal commission")
    assert answer["status"] == "REPORT_STATUS_FORWARDED"

    # The two-way channel: an officer writes, the reporter reads it through the receipt.
    sent = cli.ok(desk, "reports", "message", "--report", report_id, "--body", "please call us")
    assert sent["message_id"]
    seen = cli.ok(portal, "reports", "messages", "--receipt", receipt, "--county", COUNTY)
    assert "please call us" in [m["body"] for m in seen["messages"]]
    table = cli.run(desk, "reports", "messages", "--report", report_id)
    assert table.returncode == 0 and "please call us" in table.stdout, table.stderr
    added = cli.ok(
        portal,
        "reports",
        "add-info",
        receipt,
        "--county",
        COUNTY,
        "--content",
        "a receipt",
        "--attachment",
        f"{'ab' * 32}:2048:image/jpeg",
    )
    assert added["information_id"]
    assert "SHA256:SIZE:MEDIA_TYPE" in cli.refused(
        EXIT_INVALID,
        portal,
        "reports",
        "add-info",
        receipt,
        "--county",
        COUNTY,
        "--content",
        "x",
        "--attachment",
        "not-a-digest",
    )
    assert "--report" in cli.refused(EXIT_INVALID, desk, "reports", "messages")

    # The identity: asked for with a reason, approved by a custodian, read once by the asker.
    officer, colleague = ("co-1", "case_officer"), ("co-2", "case_officer")
    asked = cli.ok(
        officer,
        "reports",
        "reveal-identity",
        "request",
        report_id,
        "--reason",
        "to take the reporter's statement",
    )
    request_id = asked["reveal_request_id"]
    early = cli.run(officer, "reports", "reveal-identity", "read", request_id, "--json")
    assert early.returncode != 0 and "Sun Reporter" not in early.stdout + early.stderr
    custodian = (CUSTODIAN, "custodian")
    assert "approve" in cli.refused(
        EXIT_INVALID,
        custodian,
        "reports",
        "reveal-identity",
        "decide",
        request_id,
        "maybe",
        "--reason",
        "x",
    )
    cli.ok(
        custodian,
        "reports",
        "reveal-identity",
        "decide",
        request_id,
        "approve",
        "--reason",
        "statement needed",
    )
    denied = cli.refused(EXIT_DENIED, colleague, "reports", "reveal-identity", "read", request_id)
    assert "Sun Reporter" not in denied
    revealed = cli.ok(officer, "reports", "reveal-identity", "read", request_id)
    assert revealed["reporter"]["full_name"] == "Sun Reporter"
    again = cli.run(officer, "reports", "reveal-identity", "read", request_id)
    assert again.returncode != 0 and "Sun Reporter" not in again.stdout + again.stderr

    flags = cli.ok(desk, "reports", "duplicates", "--county", COUNTY, "--pending-only")
    assert isinstance(flags.get("candidates", []), list)
    cli.refused(EXIT_NOT_FOUND, desk, "reports", "duplicate", "dup-none", "link", "--reason", "x")
    # Not concluded yet: FAILED_PRECONDITION, which exits 1 with the service's reason.
    refused = cli.refused(1, desk, "reports", "feedback", report_id, "--note", "handled")
    assert "FAILED_PRECONDITION" in refused


def test_rectification_items_from_open_to_closed(cli: Cli) -> None:
    chief, staff = (CHIEF, "zone_chief"), (MEMBER, "supervision_staff")
    opening = (
        "rectification",
        "open",
        "--county",
        COUNTY,
        "--zone",
        ZONE,
        "--township",
        TOWNSHIP,
        "--owner-unit",
        "village committee",
        "--finding",
        "subsidy ledger not public",
        "--source-ref",
        "tour-7",
    )
    cli.refused(EXIT_DENIED, staff, *opening, "--source", "inspection_tour")
    assert "inspection_tour" in cli.refused(EXIT_INVALID, chief, *opening, "--source", "audit")
    item = cli.ok(chief, *opening, "--source", "inspection_tour")
    item_id = item["item_id"]
    assert item["status"] == "open" and item["source"] == "RECTIFICATION_SOURCE_INSPECTION_TOUR"

    stderr = cli.refused(
        EXIT_INVALID, staff, "rectification", "progress", item_id, "--note", "x", "--percent", "150"
    )
    assert "percent_done" in stderr
    progressed = cli.ok(
        staff, "rectification", "progress", item_id, "--note", "half posted", "--percent", "50"
    )
    assert progressed["progress"][-1]["percent_done"] == 50
    closed = cli.ok(chief, "rectification", "verify", item_id, "--done", "--note", "posted")
    assert closed["status"] == "closed"
    shown = cli.run(chief, "rectification", "show", item_id)
    assert shown.returncode == 0 and "half posted" in shown.stdout, shown.stderr
    listed = cli.ok(chief, "rectification", "list", "--county", COUNTY, "--zone", ZONE)
    assert item_id in [i["item_id"] for i in listed["items"]]
    still_open = cli.ok(chief, "rectification", "list", "--county", COUNTY, "--open-only")
    assert item_id not in [i["item_id"] for i in still_open.get("items", [])]
    cli.refused(EXIT_NOT_FOUND, chief, "rectification", "show", "rect-none")


def test_the_register_people_zones_townships_training_and_attendance(cli: Cli) -> None:
    chief, leader = (CHIEF, "zone_chief"), (LEADER, "county_leadership")
    newcomer = rid("p-900")
    created = cli.ok(
        chief,
        "people",
        "create",
        newcomer,
        "--county",
        COUNTY,
        "--name",
        "New Hire",
        "--role",
        "supervision_staff",
        "--township",
        TOWNSHIP,
        "--skill",
        "law",
        "--workload-cap",
        "2",
        "--status",
        "in_training:2026-01-05:2026-01-09",
    )
    assert created["person"]["zone_id"] == ZONE
    assert created["person"]["statuses"][0]["status"] == "in_training"
    updated = cli.ok(chief, "people", "update", newcomer, "--workload-cap", "3")
    assert updated["changed_fields"] == ["workload_cap"]
    assert updated["person"]["skills"] == ["law"]  # options not given kept their value
    shown = cli.run(chief, "people", "show", newcomer)
    assert shown.returncode == 0 and "New Hire" in shown.stdout, shown.stderr
    people = cli.ok(
        chief, "people", "list", "--county", COUNTY, "--zone", ZONE, "--page-size", "200"
    )
    assert newcomer in [p["person_id"] for p in people["people"]]
    changes = cli.ok(chief, "registry", "changes", "person", newcomer)
    assert [c["action"] for c in changes["changes"]] == ["created", "updated"]
    cli.refused(EXIT_NOT_FOUND, chief, "people", "show", rid("p-999"))
    assert "STATUS:FIRST_DAY" in cli.refused(
        EXIT_INVALID, chief, "people", "update", newcomer, "--status", "on_leave"
    )

    zone = cli.ok(chief, "zones", "show", ZONE)["zone"]
    assert zone["chief_id"] == CHIEF and TOWNSHIP in zone["township_ids"]
    cli.refused(EXIT_DENIED, chief, "zones", "update", ZONE, "--name", "renamed by a chief")
    renamed = cli.ok(leader, "zones", "update", ZONE, "--name", "第一协作区（新）")
    assert renamed["zone"]["name"] == "第一协作区（新）" and renamed["zone"]["chief_id"] == CHIEF
    zones = cli.ok(leader, "zones", "list", "--county", COUNTY)
    assert len(zones["zones"]) == 6
    placed = cli.ok(
        leader,
        "townships",
        "place",
        rid("t-99"),
        "--county",
        COUNTY,
        "--zone",
        ZONE,
        "--name",
        "新镇",
        "--effective-from",
        "2026-01-01",
    )
    assert placed["township"]["zone_id"] == ZONE
    townships = cli.ok(leader, "townships", "list", "--county", COUNTY, "--zone", ZONE)
    assert rid("t-99") in [t["township_id"] for t in townships["townships"]]

    conflict = cli.ok(
        (MEMBER, "township_member"),
        "conflicts",
        "declare",
        MEMBER,
        "--county",
        COUNTY,
        "--party-key",
        "subject-key-1",
        "--relation",
        "witness",
        "--valid-from",
        "2026-01-01",
    )
    assert conflict["conflict_id"]
    cli.refused(
        EXIT_DENIED,
        (rid("p-031"), "township_member"),
        "conflicts",
        "declare",
        MEMBER,
        "--county",
        COUNTY,
        "--party-key",
        "k",
        "--relation",
        "witness",
        "--valid-from",
        "2026-01-01",
    )

    trained = cli.ok(
        chief,
        "training",
        "record",
        MEMBER,
        "--course",
        "evidence rules",
        "--type",
        "lecture",
        "--hours",
        "2.5",
        "--date",
        "2026-11-02",
    )
    assert trained["record"]["hours"] == 2.5
    assert "hours" in cli.refused(
        EXIT_INVALID,
        chief,
        "training",
        "record",
        MEMBER,
        "--course",
        "c",
        "--type",
        "drill",
        "--hours",
        "0.04",
        "--date",
        "2026-11-02",
    )
    cli.refused(
        EXIT_DENIED,
        (INTAKE_OFFICER, "intake_officer"),
        "training",
        "record",
        MEMBER,
        "--course",
        "c",
        "--type",
        "drill",
        "--hours",
        "1",
        "--date",
        "2026-11-02",
    )
    records = cli.ok((MEMBER, "township_member"), "training", "list", MEMBER)
    assert [r["course"] for r in records["records"]] == ["evidence rules"]
    day = cli.ok(
        chief,
        "attendance",
        "record",
        MEMBER,
        "--day",
        "2026-11-02",
        "--status",
        "in_training",
        "--note",
        "course",
    )
    assert day["attendance"]["status"] == "ATTENDANCE_STATUS_IN_TRAINING"
    days = cli.ok(chief, "attendance", "list", MEMBER, "--from", "2026-11-01", "--to", "2026-11-30")
    assert [d["day"] for d in days["days"]] == ["2026-11-02"]
    table = cli.run(chief, "attendance", "list", MEMBER)
    assert table.returncode == 0 and "in training" in table.stdout, table.stderr


def test_cases_drawn_teams_recusal_and_assignments(cli: Cli, tmp_path: Path) -> None:
    chief, deputy = (CHIEF, "zone_chief"), (DEPUTY, "deputy_chief")
    clue = _report(cli, tmp_path, "Wu Director")["clue_id"]
    related = _report(cli, tmp_path, "Wu Treasurer")["clue_id"]

    def registered(clue_id: str) -> Callable[[], bool | None]:
        def probe() -> bool | None:
            shown = cli.run(chief, "cases", "show", clue_id, "--json")
            assert shown.returncode in (0, EXIT_NOT_FOUND), shown.stderr
            return True if shown.returncode == 0 else None

        return probe

    eventually_sync(registered(clue), "the clue in cases", within=EVENTUAL)
    eventually_sync(registered(related), "the second clue in cases", within=EVENTUAL)
    cli.ok(deputy, "clues", "dispose", clue, "preliminary_verification")
    cli.ok(chief, "cases", "advance", clue, "approve_disposal")

    listed = cli.ok(
        chief, "cases", "list", "--county", COUNTY, "--zone", ZONE, "--stage", "verification"
    )
    assert [c["case_id"] for c in listed["cases"]] == [clue]
    table = cli.run(chief, "cases", "list", "--county", COUNTY)
    assert table.returncode == 0 and clue in table.stdout and related in table.stdout
    linked = cli.ok(chief, "cases", "link", clue, related, "--reason", "same village funds")
    assert linked["step"]["action"] and linked["case"]["case_id"] == clue
    joint = cli.ok(
        chief,
        "cases",
        "joint",
        "townships",
        clue,
        "--township",
        OTHER_TOWNSHIP,
        "--reason",
        "the funds passed through both townships",
    )
    assert OTHER_TOWNSHIP in joint["case"]["township_ids"]
    cli.refused(EXIT_NOT_FOUND, chief, "cases", "link", clue, "clue-none", "--reason", "x")

    def drawn() -> str | None:
        case = cli.ok(chief, "cases", "show", clue)
        for step in case.get("history", []):
            if step.get("event") == "TeamAssigned":
                draw_id: str = json.loads(step["detail_json"])["draw_id"]
                return draw_id
        return None

    draw_id = eventually_sync(drawn, "the verification team drawn by staffing", within=EVENTUAL)
    team = cli.ok(chief, "draws", "explain", draw_id)["draw"]["member_person_ids"]
    first, second = team[0], team[1]
    # Someone not drawn has no assignment in the draw to answer.
    cli.refused(EXIT_NOT_FOUND, (MEMBER, "township_member"), "assignments", "accept", draw_id)
    accepted = cli.ok((first, "supervision_staff"), "assignments", "accept", draw_id)
    assert accepted["state"] == "accepted"
    declined = cli.ok(
        (second, "supervision_staff"),
        "assignments",
        "decline",
        draw_id,
        "--reason",
        "already on two cases",
    )
    assert declined["redraw_id"]
    override = cli.ok(
        chief,
        "draws",
        "override",
        draw_id,
        "--member",
        first,
        "--member",
        MEMBER,
        "--reason",
        "local knowledge needed",
    )
    assert override["override_id"]
    cli.refused(
        EXIT_DENIED, deputy, "draws", "override", draw_id, "--member", first, "--reason", "x"
    )

    own = (first, "supervision_staff")
    recusal = cli.ok(
        own,
        "recusal",
        "request",
        clue,
        first,
        "--county",
        COUNTY,
        "--zone",
        ZONE,
        "--ground",
        "prior_posting",
    )
    cli.refused(EXIT_DENIED, chief, "recusal", "decide", recusal["recusal_id"], "grant")
    decided = cli.ok(
        (COMMISSION_HEAD, "commission_head"), "recusal", "decide", recusal["recusal_id"], "grant"
    )
    assert decided["state"] == "granted"
    # Grounds are the county's rule data: staffing refuses an unknown code and lists its codes.
    unknown = cli.refused(
        EXIT_INVALID,
        own,
        "recusal",
        "request",
        clue,
        first,
        "--county",
        COUNTY,
        "--zone",
        ZONE,
        "--ground",
        "grudge",
    )
    assert "recusal_ground_code" in unknown and "close_relative_of_subject" in unknown


def test_scores_plans_campaigns_and_the_quarter(cli: Cli, tmp_path: Path) -> None:
    assessor, leader = (ASSESSOR, "assessor"), (LEADER, "county_leadership")
    now = datetime.now(UTC)
    quarter = _quarter(now)
    _report(cli, tmp_path, "Zheng Cashier")

    def scored() -> dict[str, Any] | None:
        shown = cli.run(assessor, "scores", "show", ZONE, quarter, "--county", COUNTY, "--json")
        if shown.returncode != 0:
            return None
        card: dict[str, Any] = json.loads(shown.stdout)["scorecard"]
        return card if card.get("counts") else None

    card = eventually_sync(scored, "the zone's scorecard counting the report", within=EVENTUAL)
    assert card["subject_id"] == ZONE
    explained = cli.ok(assessor, "scores", "explain", ZONE, quarter, "--county", COUNTY)
    assert any(part.get("event_ids") for part in explained["scorecard"]["components"])
    human = cli.run(assessor, "scores", "explain", ZONE, quarter, "--county", COUNTY)
    assert human.returncode == 0 and "how the score was reached" in human.stdout, human.stderr
    assert "quarter" in cli.refused(
        EXIT_INVALID, assessor, "scores", "show", ZONE, "2026Q9", "--county", COUNTY
    )
    mark = cli.ok(
        assessor,
        "scores",
        "mark",
        ZONE,
        quarter,
        "--county",
        COUNTY,
        "--points",
        "5",
        "--reason",
        "thorough casework",
    )
    assert mark["points"] == 5 and mark["assessor"] == ASSESSOR
    cli.refused(
        EXIT_DENIED,
        (CHIEF, "zone_chief"),
        "scores",
        "mark",
        ZONE,
        quarter,
        "--county",
        COUNTY,
        "--points",
        "5",
        "--reason",
        "self-praise",
    )

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"county_id: {COUNTY}\nyear: {now.year}\n"
        f"themes: [{{quarter: {quarter[-1]}, theme: rural funds}}]\n"
        f"targets: [{{quarter: {quarter[-1]}, zone_id: {ZONE}, kpi: clues_received, target: 1}}]\n"
    )
    assert cli.ok(leader, "plans", "define", str(plan))["revision"] == 1
    progress = cli.ok(
        leader,
        "plans",
        "progress",
        "--county",
        COUNTY,
        "--year",
        str(now.year),
        "--quarter",
        quarter[-1],
    )
    assert progress["theme"] == "rural funds" and progress["progress"][0]["met"]

    campaign = f"camp-{RUN}"
    defined = cli.ok(
        leader,
        "campaigns",
        "define",
        campaign,
        "--county",
        COUNTY,
        "--name",
        "rural funds",
        "--domain",
        "poverty-alleviation-funds",
        "--starts-on",
        f"{now.year}-01-01",
        "--ends-on",
        f"{now.year}-12-31",
        "--zone",
        ZONE,
    )
    assert defined["campaign_id"] == campaign
    view = cli.ok(leader, "campaigns", "show", campaign, "--county", COUNTY)
    assert view["zone_ids"] == [ZONE]
    cli.refused(EXIT_NOT_FOUND, leader, "campaigns", "show", "camp-none", "--county", COUNTY)

    out = tmp_path / "report"
    exported = cli.ok(
        assessor,
        "assessment",
        "export",
        "--county",
        COUNTY,
        "--quarter",
        quarter,
        "--out",
        str(out),
    )
    assert Path(exported["html"]).read_text(encoding="utf-8").lstrip().startswith("<!")
    assert ZONE in Path(exported["csv"]).read_text(encoding="utf-8")
    number = (now.month - 1) // 3 + 1
    previous = f"{now.year}Q{number - 1}" if number > 1 else f"{now.year - 1}Q4"
    chief = (CHIEF, "zone_chief")
    cli.refused(EXIT_DENIED, chief, "assessment", "close-quarter", previous, "--county", COUNTY)
    closed = cli.ok(leader, "assessment", "close-quarter", previous, "--county", COUNTY)
    assert closed["rules_version"]
    # A second close is refused as a precondition, not a bad request: exit 1 with the reason.
    again = cli.refused(1, leader, "assessment", "close-quarter", previous, "--county", COUNTY)
    assert "already" in again
