"""Receipt codes: shown to the reporter once, kept only as a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

RECEIPT_DIGITS = 16
KEY_BYTES = 32
KEYED_SCHEME = "hmac-sha256"
LEGACY_SCHEME = "scrypt"


def new_receipt_code() -> str:
    """A uniformly random 16-digit code (~53 bits)."""
    # One draw below 10**16, zero-padded: the same uniform codes as a digit at a time.
    return f"{secrets.randbelow(10**RECEIPT_DIGITS):0{RECEIPT_DIGITS}d}"


def well_formed(code: str) -> bool:
    """Whether `code` could be a receipt code at all (checked before any hashing)."""
    return len(code) == RECEIPT_DIGITS and code.isdigit()


def receipt_key_id(key: bytes) -> str:
    """Public id of a receipt key, stored with each hash so rotation knows which key made it."""
    return hashlib.sha256(b"xiezuo-receipt-key:" + key).hexdigest()[:12]


class ReceiptKeys:
    """HMAC-SHA256 keys for receipt hashes: the current key, and retired ones that still match.

    The key lives outside the database, so a copy of the database alone cannot be searched
    for codes offline; online guessing is stopped by the look-up throttle. One HMAC costs
    microseconds, so hashing never holds the event loop.
    """

    def __init__(self, key: bytes, *, retired: Sequence[bytes] = ()) -> None:
        for each in (key, *retired):
            if len(each) != KEY_BYTES:
                raise ValueError("a receipt key must be 32 bytes")
        self._current = key
        self._all = [key, *(each for each in retired if each != key)]

    def digest(self, code: str) -> str:
        """`hmac-sha256$<key id>$<hex>` of `code` under the current key, for storage."""
        return _keyed(self._current, code)

    def digests(self, code: str) -> list[str]:
        """What `code` would be stored as under each key, current first (exact look-up)."""
        return [_keyed(key, code) for key in self._all]


def _keyed(key: bytes, code: str) -> str:
    digest = hmac.new(key, code.encode(), hashlib.sha256).hexdigest()
    return f"{KEYED_SCHEME}${receipt_key_id(key)}${digest}"


# Receipts issued before intake_0007 are scrypt hashes found through a 4-digit clear prefix.
# They are still verified (in a worker thread: one check costs ~40 ms of CPU) and re-hashed
# under the receipt key on their first successful look-up.
PREFIX_DIGITS = 4


def receipt_prefix(code: str) -> str:
    """The look-up bucket of a receipt stored under the legacy scheme."""
    return code[:PREFIX_DIGITS]


def is_legacy(stored: str) -> bool:
    """Whether a stored receipt hash is of the legacy scrypt scheme."""
    return stored.startswith(LEGACY_SCHEME + "$")


def legacy_receipt_matches(code: str, stored: str) -> bool:
    """Constant-time check of a code against a legacy scrypt hash (slow: not on the loop)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != LEGACY_SCHEME:
        return False
    candidate = hashlib.scrypt(
        code.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate.hex(), digest)
