"""Intake's own settings (`XIEZUO_INTAKE_*`), beside the platform's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.intake.store.rule_files import RULES_DIR


class IntakeSettings(BaseSettings):
    """Rule files, retired vault keys, the receipt key and the deadline scan's pace."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_INTAKE_", extra="ignore")

    rules_dir: Path = RULES_DIR
    # KEKs replaced by rotation: they only unwrap rows not yet re-wrapped.
    vault_retired_key_files: list[Path] = Field(default_factory=list)
    feedback_scan_seconds: float = 60.0
    # HMAC key of receipt hashes (32 raw bytes or 64 hex characters), held outside the
    # database like the vault key; a dev key is generated under the state dir when unset.
    receipt_key_file: Path | None = None
    # Receipt keys replaced by a new one: receipts hashed under them are still found.
    receipt_retired_key_files: list[Path] = Field(default_factory=list)
