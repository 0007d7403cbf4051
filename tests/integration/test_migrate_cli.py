"""`xiezuo migrate` on a state directory that does not exist yet."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

XIEZUO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "xiezuo"


def test_migrate_creates_the_databases_of_a_fresh_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "never-created"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(state)
    result = subprocess.run(
        [str(XIEZUO), "migrate", "cases", "staffing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for service in ("cases", "staffing"):
        assert f"{service}: migrated" in result.stderr
        with sqlite3.connect(state / "db" / f"{service}.sqlite3") as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert {"outbox_message", "inbox_entry", "alembic_version"} <= tables


def test_migrate_says_in_one_line_why_a_database_cannot_be_reached(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIEZUO_")}
    env["XIEZUO_STATE_DIR"] = str(tmp_path)
    # A file where the database's directory should be: nothing can create it.
    (tmp_path / "blocked").write_text("")
    env["XIEZUO_CASES_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/blocked/db/cases.sqlite3"
    result = subprocess.run(
        [str(XIEZUO), "migrate", "cases"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "cases: cannot migrate" in result.stderr
    assert "Traceback" not in result.stderr
