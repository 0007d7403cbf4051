"""Per-county draw secrets: a seed ingredient nobody who sees a draw's result can choose."""

from __future__ import annotations

import hashlib
import hmac
import secrets as token_source
from dataclasses import dataclass
from pathlib import Path

from services.runtime.keyfiles import create_once

SECRET_FILE = "staffing-draw-secret.key"


@dataclass(frozen=True)
class CountySecrets:
    """Derives each county's draw secret from one master key kept outside the database."""

    master: bytes

    def for_county(self, county_id: str) -> str:
        """The county's secret (hex): stable, and independent for every county."""
        return hmac.new(self.master, county_id.encode(), hashlib.sha256).hexdigest()

    @classmethod
    def from_key_dir(cls, key_dir: Path) -> CountySecrets:
        """The master key under `key_dir`, created once on first use."""
        return cls(create_once(key_dir / SECRET_FILE, token_source.token_bytes(32)))
