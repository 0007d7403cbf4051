"""The private signing keys of the counties this deployment speaks for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.runtime.keyfiles import create_once
from services.runtime.tokens import load_private_key

DEV_KEY_PREFIX = "collaboration-"


class CountySigningKeys:
    """County id → its Ed25519 private key; a county without one is not served here."""

    def __init__(self, keys: Mapping[str, Ed25519PrivateKey]) -> None:
        self._keys = dict(keys)

    @classmethod
    def load(cls, files: Mapping[str, Path], key_dir: Path) -> CountySigningKeys:
        """From the configured files, else the dev keys under `key_dir`."""
        if files:
            return cls(
                {county: load_private_key(path.read_bytes()) for county, path in files.items()}
            )
        found = {
            path.stem.removeprefix(DEV_KEY_PREFIX): load_private_key(path.read_bytes())
            for path in sorted(key_dir.glob(f"{DEV_KEY_PREFIX}*.pem"))
        }
        return cls(found)

    @property
    def counties(self) -> frozenset[str]:
        """Counties this deployment signs for (and receives letters for)."""
        return frozenset(self._keys)

    def key_of(self, county_id: str) -> Ed25519PrivateKey | None:
        """The county's private key, if served here."""
        return self._keys.get(county_id)


def public_pem(key: Ed25519PrivateKey) -> str:
    """The PEM public key to list for the county in the network file."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def ensure_dev_key(key_dir: Path, county_id: str) -> Ed25519PrivateKey:
    """The county's dev signing key under `key_dir`, created once (mode 0600)."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return load_private_key(create_once(key_dir / f"{DEV_KEY_PREFIX}{county_id}.pem", pem))
