"""Cases' schema revisions carry existing files forward (SQLite file, real Alembic)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from services.cases.store.deadline_scan import DeadlineScanner
from services.cases.store.deadline_watch import deadlines_at_risk
from services.cases.store.deadlines import running
from services.runtime.audit_key import AuditKey
from services.runtime.db import Database
from services.runtime.migrate import upgrade, upgrade_async


def test_joint_townships_of_existing_files_become_rows(tmp_path: Path) -> None:
    path = tmp_path / "cases.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade("cases", url, "cases_0004")
    with sqlite3.connect(path) as db:
        for case_id, joint in (("clue-joint", ["t2", "t3"]), ("clue-plain", [])):
            state = json.dumps({"case_id": case_id, "joint_townships": joint})
            db.execute(
                "INSERT INTO case_file VALUES (?, 'c1', 'z1', 't1', 'k', '[]', 'registered',"
                " 'cn-default-2026.1', ?, 0, '2026-03-02 09:00:00')",
                (case_id, state),
            )
    upgrade("cases", url)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT case_id, township_id FROM case_joint_township").fetchall()
    assert sorted(rows) == [("clue-joint", "t2"), ("clue-joint", "t3")]


async def test_running_deadline_queries_search_an_index_without_the_status_one(
    tmp_path: Path,
) -> None:
    # cases_0006 dropped (status, warn_at), which every new clue's deadline wrote and no query
    # read: the scanner's, the gauges' and a record's running-deadline look-ups still search.
    path = tmp_path / "cases.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async("cases", url)
    with sqlite3.connect(path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list('case_deadline')")}
    assert "ix_case_deadline_open" not in indexes
    assert {"ix_case_deadline_running", "ix_case_deadline_case"} <= indexes

    database = Database(url, audit_key=AuditKey.generate())
    sent: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "case_deadline" in statement:
            sent.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", note)
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    try:
        await DeadlineScanner(database).scan(now=now)
        await deadlines_at_risk(database, now=now)
        async with database.session() as session:
            await running(session, "clue-1", "disposal")
    finally:
        await database.dispose()

    assert len(sent) >= 3
    with sqlite3.connect(path) as db:
        for statement, parameters in sent:
            plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            deadline_steps = [step for step in plan if step.split()[1:2] == ["case_deadline"]]
            assert deadline_steps, (statement, plan)
            assert all(step.startswith("SEARCH") for step in deadline_steps), (statement, plan)
