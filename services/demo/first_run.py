"""The demo on `xiezuo up`'s first run: load the county, replay a year, rank, report."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table
from xiezuo.assessment.v1 import assessment_pb2_grpc

from services.demo.county import DEMO_COUNTY_FILE, load_county_plan
from services.demo.driver import DemoDriver, DemoFailed, DemoOutcome, Endpoints
from services.demo.joint import joint_summary, run_joint_demo
from services.demo.letters import LETTERS, NEIGHBOUR_LETTERS, LettersYear, exchange_letters
from services.demo.network import CITY_ID, DEMO_COUNTY, NEIGHBOUR_COUNTY, NEIGHBOUR_COUNTY_FILE
from services.demo.progress import LiveProgress
from services.demo.reference import REFERENCE, YearFigures, comparison, year_figures
from services.demo.scenario import CountyPlan, generate_scenario
from services.demo.standings import Standings
from services.runtime.backentry import BACK_ENTRY_ROLE
from services.runtime.settings import PlatformSettings
from services.runtime.tokens import ALL_ZONES, mint_dev_token

MARKER_FILE = "demo-loaded"
NEIGHBOUR_NAME = "青峪县"
# Stages in which a county asks another for help with a clue (协查).
_ASKING_STAGES = frozenset({"inquiry", "verification", "investigation", "hearing"})
# Roles the scenario acts in: intake officer files reports; leadership and assessor read back.
SCENARIO_ROLES = ("intake_officer", "county_leadership", "assessor")
# Cases looked at (one GetCase each) for the letters' paper days.
_LETTER_CANDIDATES = 60
# How long the report waits for assessment to count the letters that just crossed.
_REPORT_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class DemoRequest:
    """How `xiezuo up` asked for the demo."""

    state_dir: Path
    env: dict[str, str]
    endpoints: Endpoints
    reports: int
    seed: int = 2026
    county_file: Path = DEMO_COUNTY_FILE
    # The collaboration service's gRPC address; empty: no letters to the neighbouring county.
    collaboration: str = ""
    neighbour_file: Path = NEIGHBOUR_COUNTY_FILE
    # Where the web console listens (`xiezuo up` starts it); empty: no console to point to.
    console_url: str = ""


def should_run(state_dir: Path) -> bool:
    """First run: the state dir has no marker of a demo already loaded."""
    return not (state_dir / MARKER_FILE).exists()


def run_first_demo(request: DemoRequest, *, console: Console, out: Console) -> DemoOutcome | None:
    """Run the demo; on any failure say so and return None (the platform keeps running)."""
    try:
        outcome = _run(request, console)
    except Exception as exc:
        # Whatever went wrong, the demo must never take the platform down with it.
        _failed(console, _reason(exc))
        return None
    letters = _letters(request, outcome, console)
    joint = None if letters is None else run_joint_demo(request, outcome, letters, console)
    if letters is not None:
        # Fetched again now that the letters crossed: the year's "Help between counties".
        outcome = _report_after_letters(request, outcome, letters, console)
    report_path = _write_report(outcome, request.state_dir / "demo")
    cases_path = _write_cases(outcome, request.state_dir / "demo")
    plan = load_county_plan(request.county_file)
    figures = year_figures(outcome.clues, outcome.cases)
    _print_outcome(outcome, plan, report_path, cases_path, out)
    _print_year(outcome, figures, out)
    if letters is not None:
        _print_letters(letters, out)
    if joint is not None:
        out.print(joint_summary(joint), soft_wrap=True, highlight=False)
    if request.console_url:
        _print_sign_in(request.console_url, plan, out)
    (request.state_dir / MARKER_FILE).write_text(
        json.dumps(
            {
                "reports": outcome.submitted,
                "clues": outcome.clues,
                "quarter": outcome.quarter,
                "quarters": sorted(outcome.by_quarter),
                "report": str(report_path),
                "cases": str(cases_path),
                "stuck": sum(1 for case in outcome.cases if case.stuck),
                "in_progress": sum(1 for case in outcome.cases if case.waiting),
                "accepted": outcome.answered.accepted,
                "results_told": outcome.answered.results_told,
                "at_risk": dict(outcome.at_risk),
                "zone_names": {zone: plan.name(zone) for zone in sorted(outcome.at_risk)},
                "roads": dict(figures.roads),
                "figures": {
                    "clues": figures.clues,
                    "filed": figures.filed,
                    "sanctioned": figures.sanctioned,
                    "four_forms": list(figures.forms),
                },
                "office": asdict(outcome.office),
                "kpis": dict(outcome.kpis),
                "letters": None if letters is None else _letters_marker(letters),
                "loaded_at": datetime.now(UTC).isoformat(),
            }
        ),
        encoding="utf-8",
    )
    return outcome


def _print_sign_in(console_url: str, plan: CountyPlan, out: Console) -> None:
    """Where to look at the year just loaded: the console's sign-in page, and as whom."""
    out.print(
        f"Sign in to the web console at {console_url}sign-in", soft_wrap=True, highlight=False
    )
    chief = next(iter(sorted(plan.zone_chiefs.items())), None)
    if chief is not None and plan.county_leader:
        zone, person = chief
        # Names only: the page lists people by name (with their ids beside them).
        out.print(
            f"  e.g. as {plan.name(person)}, zone chief of {plan.name(zone)}, "
            f"or {plan.name(plan.county_leader)} of the county leadership",
            soft_wrap=True,
            highlight=False,
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, DemoFailed):
        return str(exc)
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"a service answered {exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


def _failed(console: Console, reason: str) -> None:
    console.print(f"[red]demo scenario failed:[/red] {reason}")
    console.print(
        "The platform is still running; the demo will be tried again on the next `xiezuo up` "
        "(or skip it with --no-demo)."
    )


def _run(request: DemoRequest, console: Console) -> DemoOutcome:
    plan = load_county_plan(request.county_file)
    console.print(f"[cyan]demo:[/cyan] loading the demo county from {request.county_file} ...")
    _import_county(request, request.county_file)
    if request.collaboration:
        # The neighbour's staff: an accepted letter draws its team from that county's pool.
        _import_county(request, request.neighbour_file)
    # Received over the year so far, up to last midnight (UTC): never in the future.
    until = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = until.replace(month=1, day=1)
    if start >= until:
        start = (until - timedelta(days=1)).replace(month=1, day=1)
    reports = generate_scenario(
        plan, seed=request.seed, count=request.reports, start=start, until=until
    )
    console.print(
        f"[cyan]demo:[/cyan] replaying {len(reports)} reports received "
        f"{start:%Y-%m-%d} .. {until:%Y-%m-%d} across {len(plan.zone_ids)} zones"
    )
    # The services' own settings (issuer, audience) come from the same environment as ours.
    platform = PlatformSettings()

    def mint(subject: str, roles: Sequence[str], zone_id: str) -> str:
        return mint_dev_token(
            key_dir=request.state_dir / "keys",
            subject=subject,
            # Everyone holds the back-entry grant: the demo enters a year's paper ledger (补录),
            # each report and step dated when it happened.
            roles=sorted({*roles, BACK_ENTRY_ROLE}),
            county_id=plan.county_id,
            zone_ids=[zone_id],
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )

    token = mint("demo-scenario", SCENARIO_ROLES, ALL_ZONES)
    driver = DemoDriver(request.endpoints, token=token, county=plan, mint=mint)
    per_zone = Counter(r.zone_id for r in reports)
    with LiveProgress(console, per_zone=per_zone, clues=len(reports), names=plan.names) as progress:
        return asyncio.run(driver.run(reports, observer=progress))


def _import_county(request: DemoRequest, county_file: Path) -> None:
    # The staffing CLI writes its registry and outbox; the running staffing service publishes
    # TownshipPlaced from there, as for an operator's own import.
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "staffing", "import", str(county_file)],
        env={**os.environ, **request.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        # The last line names the error; the traceback above it would drown the message.
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise DemoFailed(f"`xiezuo staffing import` exited with {done.returncode}: {lines[-1]}")


def _letters(request: DemoRequest, outcome: DemoOutcome, console: Console) -> LettersYear | None:
    """Letters to the neighbouring county from a few of the year's cases; None if none."""
    if not request.collaboration:
        return None
    plan = load_county_plan(request.county_file)
    platform = PlatformSettings()

    def token_for(county_id: str, role: str = "") -> str:
        # Each county acts with its own token (leadership: asks, approves, decides, answers;
        # the neighbour's officers work the clues handed over); the city commission's is
        # scoped to the city's id.
        role = role or ("city_commission" if county_id == CITY_ID else "county_leadership")
        return mint_dev_token(
            key_dir=request.state_dir / "keys",
            subject=f"demo-{role}-{county_id}",
            # 演示县's letters are entered on their paper dates (补录).
            roles=[role, BACK_ENTRY_ROLE],
            county_id=county_id,
            zone_ids=[ALL_ZONES],
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )

    # Help is asked while a clue is being worked: candidates are the cases that went through
    # inquiry, verification, investigation or a hearing (then any: every one has a case file
    # the answer lands in); the letters take the five whose paper days spread over the year.
    working = sorted(outcome.cases, key=lambda c: (not _ASKING_STAGES & set(c.road), c.clue_id))
    cases = [(case.clue_id, case.zone_id) for case in working[:_LETTER_CANDIDATES]]
    console.print(
        f"[cyan]demo:[/cyan] one clue transfer and one designation to {NEIGHBOUR_NAME}, worked "
        f"there; {min(len(cases), len(LETTERS))} assistance letters to it "
        f"({plan.county_id} → {NEIGHBOUR_NAME}) and {len(NEIGHBOUR_LETTERS)} from it ..."
    )
    try:
        return asyncio.run(
            exchange_letters(
                request.collaboration,
                token_for,
                cases,
                cases_address=request.endpoints.cases,
            )
        )
    except Exception as exc:
        # The county's year stands without them; say why and keep the platform up.
        console.print(f"[red]demo letters between counties failed:[/red] {_reason(exc)}")
        return None


def _letters_marker(letters: LettersYear) -> dict[str, object]:
    ours = letters.asked_by(DEMO_COUNTY)
    theirs = letters.asked_by(NEIGHBOUR_COUNTY)
    return {
        "sent": letters.sent,
        "answered": letters.answered,
        "declined": letters.declined,
        "received": letters.received,
        "answered_by_us": letters.answered_by_us,
        "median_seconds": letters.median_seconds,
        "letter_ids": [letter.letter_id for letter in ours],
        "teams": [letter.team_size for letter in ours],
        "approved_at": [
            letter.approved_at.isoformat() if letter.approved_at else None for letter in ours
        ],
        "received_ids": [letter.letter_id for letter in theirs],
        "teams_given": [letter.team_size for letter in theirs],
        "transfer_id": letters.transfer_id,
        "designation_id": letters.designation_id,
        "handed_over": [
            {"id": h.transfer_id, "mode": h.mode, "stage": h.stage, "trail": list(h.trail)}
            for h in letters.handed_over
        ],
    }


def _print_letters(letters: LettersYear, out: Console) -> None:
    median = letters.median_seconds
    took = "no answer" if median is None else _duration(median)
    out.print(
        f"demo: letters to {NEIGHBOUR_NAME}: {letters.sent} sent, {letters.answered} answered, "
        f"{letters.declined} declined; letters from {NEIGHBOUR_NAME}: {letters.received} "
        f"received, {letters.answered_by_us} answered; median approval → answer of ours "
        f"{took} ({_spread(letters)})",
        soft_wrap=True,
    )
    words = {
        "transfer": "clue transferred to {name} (线索移送)",
        "designation": "clue designated to {name} by the city commission (指定管辖)",
    }
    for handed in letters.handed_over:
        trail = " → ".join(handed.trail) or "no step reported yet"
        out.print(
            f"demo: 1 {words[handed.mode].format(name=NEIGHBOUR_NAME)} {handed.transfer_id}: "
            f"registered there as a new clue, worked by its officers (now at "
            f"{handed.stage or 'registered'}); our read-only trail: {trail}",
            soft_wrap=True,
        )


def _spread(letters: LettersYear) -> str:
    quarters = sorted(
        {
            f"Q{(letter.approved_at.month - 1) // 3 + 1}"
            for letter in letters.asked_by(DEMO_COUNTY)
            if letter.approved_at is not None
        }
    )
    return "entered on their paper dates, approved in " + ", ".join(quarters)


def _report_after_letters(
    request: DemoRequest, outcome: DemoOutcome, letters: LettersYear, console: Console
) -> DemoOutcome:
    """The year's report again, once assessment counted the letters (or as it stands)."""
    platform = PlatformSettings()
    plan = load_county_plan(request.county_file)
    token = mint_dev_token(
        key_dir=request.state_dir / "keys",
        subject="demo-scenario",
        roles=list(SCENARIO_ROLES),
        county_id=plan.county_id,
        zone_ids=[ALL_ZONES],
        issuer=platform.token_issuer,
        audience=platform.token_audience,
    )
    # The county line of the table: sent, answered for us, answered by us.
    expected = (
        f"<tr><td>county</td><td>{letters.sent}</td><td>{letters.answered}</td>"
        f"<td>{letters.answered_by_us}</td>"
    )

    async def fetch() -> tuple[str, str]:
        async with grpc.aio.insecure_channel(request.endpoints.assessment) as channel:
            standings = Standings(
                assessment_pb2_grpc.AssessmentServiceStub(channel),
                county_id=plan.county_id,
                metadata=(("authorization", f"Bearer {token}"),),
                call_timeout=30.0,
            )
            deadline = time.monotonic() + _REPORT_WAIT_SECONDS
            while True:
                html, csv = await standings.export(outcome.year)
                if expected in html or time.monotonic() > deadline:
                    return html, csv
                await asyncio.sleep(1.0)

    try:
        html, csv = asyncio.run(fetch())
    except Exception as exc:
        console.print(f"[red]demo: the report after the letters failed:[/red] {_reason(exc)}")
        return outcome
    return replace(outcome, report_html=html, report_csv=csv)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 86400:.1f} days"


def _write_report(outcome: DemoOutcome, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / f"report-{outcome.year}.html"
    html.write_text(outcome.report_html, encoding="utf-8")
    (out_dir / f"scorecards-{outcome.year}.csv").write_text(outcome.report_csv, encoding="utf-8")
    return html


def _write_cases(outcome: DemoOutcome, out_dir: Path) -> Path:
    # Each clue's script against where it stands: what a reader (or a test) checks the run by.
    path = out_dir / "cases.json"
    rows = [
        {
            "clue_id": case.clue_id,
            "zone_id": case.zone_id,
            "fate": case.fate,
            "planned_stage": case.planned_stage,
            "road": list(case.road),
            "stage": case.stage,
            "stuck": case.stuck,
            "waiting": case.waiting,
        }
        for case in outcome.cases
    ]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _print_outcome(
    outcome: DemoOutcome, plan: CountyPlan, report_path: Path, cases_path: Path, out: Console
) -> None:
    quarters = sorted(outcome.by_quarter)
    table = Table(title=f"Zone ranking {outcome.quarter} (scores of every quarter beside it)")
    for column in ("rank", "zone", "score", "list", *quarters):
        table.add_column(column)
    for entry in outcome.ranking:
        trend = [_score(outcome.by_quarter[quarter].get(entry.zone_id)) for quarter in quarters]
        zone = plan.name(entry.zone_id)
        table.add_row(str(entry.rank), zone, f"{entry.total:.1f}", entry.tier, *trend)
    out.print(table)
    out.print(
        f"demo: {outcome.submitted} reports submitted, {outcome.clues} clues registered in cases",
        soft_wrap=True,
    )
    stages = Counter(case.stage for case in outcome.cases)
    out.print(
        "demo: cases by stage: " + ", ".join(f"{s} {n}" for s, n in sorted(stages.items())),
        soft_wrap=True,
    )
    out.print(
        f"demo: {outcome.answered.accepted} reports accepted, "
        f"{outcome.answered.results_told} real-name reporters told the result",
        soft_wrap=True,
    )
    waiting = sum(1 for case in outcome.cases if case.waiting)
    if waiting:
        out.print(
            f"demo: {waiting} clue(s) still in progress (their next step falls after today: "
            "recent clues, and stored clues awaiting their next review)",
            soft_wrap=True,
        )
    risk = sum(outcome.at_risk.values())
    out.print(
        f"demo: deadlines at risk now: {risk} ("
        + ", ".join(f"{plan.name(zone)} {count}" for zone, count in sorted(outcome.at_risk.items()))
        + ")",
        soft_wrap=True,
    )
    stuck = [case for case in outcome.cases if case.stuck]
    if stuck:
        # Not a failure of the demo: the zone's pool ran dry (workload caps, 异地 and
        # separation rules), which is what staffing is there to show.
        out.print(
            f"demo: {len(stuck)} clue(s) wait where staffing could not draw a team "
            "(too few eligible people under workload caps and exclusions):",
            soft_wrap=True,
        )
        for case in stuck[:10]:
            where = f"{case.clue_id} ({plan.name(case.zone_id)}) at {case.stage}"
            out.print(f"  {where}: {case.stuck}", soft_wrap=True)
        if len(stuck) > 10:
            out.print(f"  ... and {len(stuck) - 10} more in {cases_path}", soft_wrap=True)
    # Never wrapped, so the path can be copied (and read by scripts) whole.
    out.print(f"HTML report: {report_path}", soft_wrap=True, highlight=False)


def _print_year(outcome: DemoOutcome, figures: YearFigures, out: Console) -> None:
    """The roads the year walked, and the year beside a county's (the reference profile)."""
    office = outcome.office
    roads = Table(title="The demo year's roads (clues that walked each, and the office's year)")
    roads.add_column("road")
    roads.add_column("count", justify="right")
    for label, count in figures.roads.items():
        roads.add_row(label, str(count))
    breached = outcome.kpis.get("deadlines_breached", 0)
    for label, count in (
        ("deadlines breached (counted by assessment)", breached),
        ("rectification items opened (inspection tour, campaign)", office.rectifications_opened),
        ("rectification items verified done", office.rectifications_closed),
        ("training records (each quarter)", office.training_records),
        ("attendance days recorded", office.attendance_days),
        ("qualitative marks (zones and staff, ended quarters)", office.qualitative_marks),
        ("work plan revision (Q1–Q4 themes and targets)", office.plan_revision),
    ):
        roads.add_row(label, str(count))
    roads.add_row("special campaign", office.campaign)
    out.print(roads)
    compare = Table(
        title=f"The demo year beside a county's year: {REFERENCE.label}",
        caption=f"reference: {REFERENCE.source}",
    )
    for column in ("measure", f"demo {outcome.year} (to date)", "reference"):
        compare.add_column(column)
    for row in comparison(figures):
        compare.add_row(*row)
    counted = [outcome.kpis.get(f"four_forms.{form}", 0) for form in range(1, 5)]
    if any(counted):
        # The same people as assessment placed them (its own rules, from cases' events).
        compare.add_row("four forms as assessment counts them", " / ".join(map(str, counted)), "")
    out.print(compare)


def _score(total: float | None) -> str:
    return "" if total is None else f"{total:.1f}"
