"""Staffing's own settings (`XIEZUO_STAFFING_*`), beside the platform's."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.staffing.store.rule_files import DEFAULT_RECUSAL_GROUNDS_FILE


class StaffingSettings(BaseSettings):
    """The county's rule data files."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_STAFFING_", extra="ignore")

    # Recusal grounds (回避): codes, labels and the articles they rest on.
    recusal_grounds_file: Path = DEFAULT_RECUSAL_GROUNDS_FILE
