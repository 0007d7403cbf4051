"""The secret that seals a service's audit chain, held in a file the database never sees."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.runtime.keyfiles import create_once

KEY_BYTES = 32


@dataclass(frozen=True)
class AuditKey:
    """HMAC-SHA256 key of one service's audit chains and checkpoints."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < KEY_BYTES:
            raise ValueError(f"an audit key needs at least {KEY_BYTES} bytes")

    @property
    def key_id(self) -> str:
        """A short public name of the key (for rotation), not enough to recover it."""
        return hashlib.sha256(b"xiezuo-audit-key-id\0" + self.secret).hexdigest()[:16]

    def seal(self, purpose: str, fields: dict[str, Any]) -> str:
        """Hex HMAC of `fields`' canonical JSON; `purpose` keeps entry and checkpoint MACs apart."""
        canonical = json.dumps(
            {"purpose": purpose, **fields},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hmac.new(self.secret, canonical.encode("utf-8"), hashlib.sha256).hexdigest()

    @classmethod
    def generate(cls) -> AuditKey:
        """A fresh random key (tests and first start of a dev stack)."""
        return cls(secrets.token_bytes(KEY_BYTES))


def load_audit_key(path: Path, *, create: bool) -> AuditKey:
    """Read the key file at `path`; create it once when `create` (the dev state dir only).

    A configured path (a Kubernetes Secret mount) is never created: every replica and the
    verifier must hold the same key, so a missing one is an error, not a fresh key.
    """
    if create:
        content = create_once(path, secrets.token_bytes(KEY_BYTES).hex().encode())
    elif not path.is_file():
        raise FileNotFoundError(f"audit key file {path} does not exist")
    else:
        content = path.read_bytes()
    text = content.strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        secret = content  # raw random bytes, as `openssl rand 32` writes them
    return AuditKey(secret)
