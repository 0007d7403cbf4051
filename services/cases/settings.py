"""Cases' own settings (`XIEZUO_CASES_*`), beside the platform's."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class CasesSettings(BaseSettings):
    """The deadline engine's pace."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_CASES_", extra="ignore")

    # Seconds between deadline passes; the rows, not this timer, say what is due.
    deadline_scan_seconds: float = 60.0
    deadline_scan_batch: int = 500
