"""Envelope encryption for what intake must hold but never show: identities and content."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.runtime.keyfiles import create_once

_KEY_BYTES = 32
_NONCE_BYTES = 12


@dataclass(frozen=True)
class Sealed:
    """Ciphertext plus the wrapped data key that opens it."""

    kek_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


class Vault:
    """AES-GCM with a fresh data key per record, wrapped by a key-encryption key (KEK)."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != _KEY_BYTES:
            raise ValueError("the vault key-encryption key must be 32 bytes")
        self._kek = AESGCM(kek)
        # Identifies the KEK without revealing it, so rotation can find rows still under it.
        self.kek_id = hashlib.sha256(b"xiezuo-kek:" + kek).hexdigest()[:16]

    @classmethod
    def from_key_file(cls, path: Path) -> Vault:
        """Load a KEK written as 32 raw bytes or 64 hex characters."""
        raw = path.read_bytes().strip()
        key = bytes.fromhex(raw.decode()) if len(raw) == 2 * _KEY_BYTES else raw
        return cls(key)

    @staticmethod
    def ensure_dev_key(path: Path) -> Path:
        """Create a random development KEK (mode 0600) unless one exists."""
        create_once(path, secrets.token_hex(_KEY_BYTES).encode())
        return path

    def seal(self, plaintext: bytes, *, context: bytes) -> Sealed:
        """Encrypt; `context` (e.g. the report id) is bound as associated data."""
        data_key = AESGCM.generate_key(bit_length=8 * _KEY_BYTES)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, context)
        wrap_nonce = secrets.token_bytes(_NONCE_BYTES)
        wrapped = wrap_nonce + self._kek.encrypt(wrap_nonce, data_key, context)
        return Sealed(self.kek_id, wrapped, nonce, ciphertext)

    def open(self, sealed: Sealed, *, context: bytes) -> bytes:
        """Decrypt; fails if any byte or the context was changed."""
        if sealed.kek_id != self.kek_id:
            raise ValueError(f"sealed under key {sealed.kek_id}, not the current key")
        wrap_nonce, wrapped = sealed.wrapped_key[:_NONCE_BYTES], sealed.wrapped_key[_NONCE_BYTES:]
        data_key = self._kek.decrypt(wrap_nonce, wrapped, context)
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, context)
