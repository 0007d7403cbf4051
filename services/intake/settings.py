"""Intake's own settings (`XIEZUO_INTAKE_*`), beside the platform's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.store.rule_files import RULES_DIR


class IntakeSettings(BaseSettings):
    """Rule files, retired vault keys and the deadline scan's pace."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_INTAKE_", extra="ignore")

    rules_dir: Path = RULES_DIR
    # KEKs replaced by rotation: they only unwrap rows not yet re-wrapped.
    vault_retired_key_files: list[Path] = Field(default_factory=list)
    feedback_scan_seconds: float = 60.0
