"""Settings: SQLite by default, PostgreSQL per service by environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.settings import Settings


def test_sqlite_file_under_state_dir_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XIEZUO_STATE_DIR", str(tmp_path))
    settings = Settings("cases")
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/db/cases.sqlite3"
    assert settings.grpc_address == "127.0.0.1:50052"


def test_each_service_switches_to_postgres_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://xiezuo@db/intake"
    monkeypatch.setenv("XIEZUO_INTAKE_DATABASE_URL", url)
    monkeypatch.setenv("XIEZUO_INTAKE_GRPC_PORT", "0")
    assert Settings("intake").database_url == url
    assert Settings("intake").grpc_address == "127.0.0.1:0"
    assert Settings("cases").database_url.startswith("sqlite+aiosqlite:///")


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        Settings("payroll")
