"""Receipt codes: shown to the reporter once, kept only as a slow hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

RECEIPT_DIGITS = 16
# scrypt cost: about 40 ms per hash (measured on the 2-core dev machine), so guessing
# 10^16 codes offline is out of reach.
_N, _R, _P = 2**14, 8, 1


def new_receipt_code() -> str:
    """A uniformly random 16-digit code (~53 bits)."""
    return "".join(secrets.choice("0123456789") for _ in range(RECEIPT_DIGITS))


def hash_receipt(code: str) -> str:
    """`scrypt$N$r$p$salt$hash` for storage."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def receipt_matches(code: str, stored: str) -> bool:
    """Constant-time check of a code against its stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        code.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(candidate.hex(), digest)


# Kept in clear to find the few candidate hashes to check; the other 12 digits (~40 bits)
# stay behind scrypt and the guessing lockout.
PREFIX_DIGITS = 4


def receipt_prefix(code: str) -> str:
    """The look-up bucket of a receipt code."""
    return code[:PREFIX_DIGITS]


def well_formed(code: str) -> bool:
    """Whether `code` could be a receipt code at all (checked before any hashing)."""
    return len(code) == RECEIPT_DIGITS and code.isdigit()
