"""Cases' schema revisions carry existing files forward (SQLite file, real Alembic)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from services.runtime.migrate import upgrade


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
