"""Collaboration's own settings (`XIEZUO_COLLABORATION_*`), beside the platform's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LETTER_KINDS_FILE = Path(__file__).with_name("rules") / "letter_kinds.yaml"
DEFAULT_TRANSFER_RULES_FILE = Path(__file__).with_name("rules") / "transfers.yaml"
DEFAULT_JOINT_RULES_FILE = Path(__file__).with_name("rules") / "joint_cases.yaml"


class CollaborationSettings(BaseSettings):
    """Signing keys of the counties this deployment speaks for, and the allowlist file."""

    model_config = SettingsConfigDict(env_prefix="XIEZUO_COLLABORATION_", extra="ignore")

    # County id → PEM Ed25519 private key file (a mounted Secret), e.g.
    # XIEZUO_COLLABORATION_SIGNING_KEY_FILES='{"county-a": "/keys/county-a.pem"}'. Empty: every
    # `<state_dir>/keys/collaboration-<county>.pem` (dev keys, `xiezuo collaboration keygen`).
    signing_key_files: dict[str, Path] = Field(default_factory=dict)
    letter_kinds_file: Path = DEFAULT_LETTER_KINDS_FILE
    # The allowlist of clue transfers and designations.
    transfer_rules_file: Path = DEFAULT_TRANSFER_RULES_FILE
    # Joint investigations: each county's share per kind (bounds and default).
    joint_rules_file: Path = DEFAULT_JOINT_RULES_FILE
    # How often open letters are checked against their due dates (reminders, overdue).
    due_scan_seconds: float = 300.0
