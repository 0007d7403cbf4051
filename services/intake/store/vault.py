"""Envelope encryption for what intake must hold but never show: identities and content."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
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

    def __init__(self, kek: bytes, *, retired: Sequence[bytes] = ()) -> None:
        for key in (kek, *retired):
            if len(key) != _KEY_BYTES:
                raise ValueError("the vault key-encryption key must be 32 bytes")
        self._kek = AESGCM(kek)
        # Identifies the KEK without revealing it, so rotation can find rows still under it.
        self.kek_id = kek_id_of(kek)
        # Earlier KEKs only unwrap: rows still under them stay readable until re-wrapped.
        self._keks = {kek_id_of(key): AESGCM(key) for key in retired}
        self._keks[self.kek_id] = self._kek

    @classmethod
    def from_key_file(cls, path: Path, *, retired: Sequence[Path] = ()) -> Vault:
        """Load a KEK written as 32 raw bytes or 64 hex characters (and retired ones)."""
        return cls(read_key_file(path), retired=[read_key_file(p) for p in retired])

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
        data_key = self._unwrap(sealed, context)
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, context)

    def rewrap(self, sealed: Sealed, *, context: bytes) -> Sealed:
        """The same ciphertext with its data key wrapped under the current KEK."""
        data_key = self._unwrap(sealed, context)
        wrap_nonce = secrets.token_bytes(_NONCE_BYTES)
        wrapped = wrap_nonce + self._kek.encrypt(wrap_nonce, data_key, context)
        return Sealed(self.kek_id, wrapped, sealed.nonce, sealed.ciphertext)

    def _unwrap(self, sealed: Sealed, context: bytes) -> bytes:
        kek = self._keks.get(sealed.kek_id)
        if kek is None:
            raise ValueError(f"sealed under key {sealed.kek_id}, not the current key")
        wrap_nonce, wrapped = sealed.wrapped_key[:_NONCE_BYTES], sealed.wrapped_key[_NONCE_BYTES:]
        return kek.decrypt(wrap_nonce, wrapped, context)


def kek_id_of(kek: bytes) -> str:
    """Public id of a KEK."""
    return hashlib.sha256(b"xiezuo-kek:" + kek).hexdigest()[:16]


def read_key_file(path: Path) -> bytes:
    """A KEK written as 32 raw bytes or 64 hex characters."""
    raw = path.read_bytes().strip()
    return bytes.fromhex(raw.decode()) if len(raw) == 2 * _KEY_BYTES else raw
