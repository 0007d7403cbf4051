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
from services.assessment.handlers.ledgers import Ledger, ledgers
from services.assessment.handlers.mappers import projections
from services.assessment.handlers.projection import ProjectionHandler, township_placed, unit_named
from services.contracts.cases import CaseDecided, CaseTransferred
from services.contracts.staffing import TeamUnfillable, TownshipPlaced, UnitNamed
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.migrate import upgrade

AT = datetime(2026, 8, 3, tzinfo=UTC)


async def _seed(url: str) -> None:
    database = Database(url)
    by_type = {p.event_class.event_type: p.mapper for p in projections()}
    events = (
        [
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
                detail={"decision": decision, "sanctions": sanctions},
            )
            for index, (zone, decision, sanctions) in enumerate(
                [
                    ("z1", "education", []),
                    ("z1", "party_sanction", [{"track": "party", "kind": "probation"}]),
                    ("z2", "education", []),
                ]
            )
        ]
        + [
            # 移送检察机关 with 双开: the fourth form, and a person sanctioned.
            CaseTransferred(
                county_id="c1",
                zone_id="z2",
                case_id="k7",
                township_id="t1",
                action="approve_decision",
                from_stage="decision_proposed",
                to_stage="transferred",
                actor="p1",
                rule_version="r1",
                occurred_at=AT,
                detail={
                    "decision": "transfer",
                    "sanctions": [
                        {"track": "party", "kind": "expulsion", "effect_months": 0},
                        {"track": "government", "kind": "expulsion", "effect_months": 0},
                    ],
                },
            ),
            UnitNamed(county_id="c1", zone_id="z1", kind="zone", unit_id="z1", name="第一协作区"),
            TownshipPlaced(
                county_id="c1",
                zone_id="z1",
                township_id="t1",
                township_name="二曲镇",
                effective_from=AT.date(),
            ),
        ]
        + [
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
    )
    calendar = AssessmentCalendar()
    extra = ledgers(calendar)
    registry: dict[str, Ledger] = {
        UnitNamed.event_type: unit_named,
        TownshipPlaced.event_type: township_placed,
    }
    try:
        async with database.transaction() as session:
            for index, event in enumerate(events):
                envelope = Envelope(
                    f"e{index}", event.event_type, "t", AT, "c1", event.zone_id, b""
                )
                if event.event_type in registry:
                    await registry[event.event_type](session, event, envelope)
                    continue
                handler = ProjectionHandler(
                    by_type[event.event_type], calendar, extra.get(event.event_type, ())
                )
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
    # Zone and township rankings, four forms, decisions, deadlines (no person: no chart).
    assert html.count("<svg") == 5
    assert "party_sanction" in html and "Trend" in html
    # Names beside ids, from the registry's events.
    assert "第一协作区 (z1)" in html and "二曲镇 (t1)" in html
    assert "四种形态" in html
    rows = list(csv.DictReader((out / "scorecards.csv").open(encoding="utf-8")))
    zones = {row["subject_id"]: row for row in rows if row["level"] == "zone"}
    assert zones["z1"]["decisions.education"] == "1"
    assert (zones["z1"]["name"], zones["z1"]["zone_names"]) == ("第一协作区", "第一协作区")
    township = next(row for row in rows if row["level"] == "township")
    assert (township["name"], township["zone_names"]) == ("二曲镇", "第一协作区 z2")
    # z1: education (1), probation (3); z2: education (1), transfer with 双开 (4).
    forms = {z: [zones[z][f"four_forms.{n}"] for n in (1, 2, 3, 4)] for z in ("z1", "z2")}
    assert forms == {"z1": ["1", "0", "1", "0"], "z2": ["1", "0", "0", "1"]}
    assert zones["z2"]["people_sanctioned"] == "1"
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
