"""`xiezuo assessment report`: HTML with charts and CSV from a real (SQLite) projection."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.assessment.cli import app
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import ProjectionHandler
from services.contracts.cases import CaseDecided
from services.contracts.staffing import TeamUnfillable
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.migrate import upgrade

AT = datetime(2026, 8, 3, tzinfo=UTC)


async def _seed(url: str) -> None:
    database = Database(url)
    by_type = {p.event_class.event_type: p.mapper for p in projections()}
    events = [
        CaseDecided(
            county_id="c1",
            zone_id=zone,
            case_id=f"k{index}",
            township_id="t1",
            action="approve_decision",
            from_stage="decision_proposed",
            to_stage="decided",
            actor="p1",
            rule_version="r1",
            occurred_at=AT,
            detail={"decision": decision, "sanctions": []},
        )
        for index, (zone, decision) in enumerate(
            [("z1", "education"), ("z1", "party_sanction"), ("z2", "education")]
        )
    ] + [
        TeamUnfillable(
            county_id="c1",
            zone_id="z2",
            request_id="r1",
            case_id="k9",
            stage="hearing",
            draw_id="d1",
            reasons=["none"],
            decided_at=AT,
        )
    ]
    try:
        async with database.transaction() as session:
            for index, event in enumerate(events):
                envelope = Envelope(
                    f"e{index}", event.event_type, "t", AT, "c1", event.zone_id, b""
                )
                handler = ProjectionHandler(by_type[event.event_type], AssessmentCalendar())
                await handler(session, event, envelope)
    finally:
        await database.dispose()


def test_report_writes_html_charts_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'assessment.sqlite3'}"
    upgrade("assessment", url)
    asyncio.run(_seed(url))
    monkeypatch.setenv("XIEZUO_ASSESSMENT_DATABASE_URL", url)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["report", "--quarter", "2026Q3", "--county", "c1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    # Zone and township rankings, four forms, deadlines (no person was counted: no chart).
    assert html.count("<svg") == 4
    assert "party_sanction" in html and "Trend" in html
    rows = list(csv.DictReader((out / "scorecards.csv").open(encoding="utf-8")))
    zones = {row["subject_id"]: row for row in rows if row["level"] == "zone"}
    assert zones["z1"]["decisions.education"] == "1"
    assert (zones["z1"]["rank"], zones["z1"]["tier"]) == ("1", "top")
    assert zones["z2"]["total"] == "49.00"
    bad = CliRunner().invoke(app, ["report", "--quarter", "2026Q7", "--county", "c1"])
    assert bad.exit_code != 0


def test_year_report_ranks_by_mean_quarter_and_sums_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'assessment.sqlite3'}"
    upgrade("assessment", url)
    asyncio.run(_seed(url))
    monkeypatch.setenv("XIEZUO_ASSESSMENT_DATABASE_URL", url)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["report", "--year", "2026", "--county", "c1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Assessment 2026" in html and "party_sanction" in html
    assert "<th>2026Q3</th>" in html and "Deadline compliance" in html
    rows = list(csv.DictReader((out / "scorecards.csv").open(encoding="utf-8")))
    zones = {row["subject_id"]: row for row in rows if row["level"] == "zone"}
    assert {row["quarter"] for row in rows} == {"2026"}
    assert zones["z1"]["decisions.education"] == "1"
    # Q3 49 (the unfillable team), three idle quarters at the base 50: mean 49.75.
    assert zones["z2"]["total"] == "49.75"
    assert (zones["z1"]["rank"], zones["z2"]["rank"]) == ("1", "2")
    both = CliRunner().invoke(
        app, ["report", "--year", "2026", "--quarter", "2026Q3", "--county", "c1"]
    )
    assert both.exit_code != 0
