"""Ed25519 signatures over a cross-county record: CloudEvent id, type, source, subject, payload."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The payload field that carries the signature; it is the one field not signed.
SIGNATURE_FIELD = "signature"


def signed_bytes(
    *, event_id: str, event_type: str, source: str, subject: str | None, payload: dict[str, Any]
) -> bytes:
    """The canonical bytes a county signs: sorted-key compact JSON, signature field left out.

    The envelope's id, type, source and subject are inside, so a payload cannot be replayed
    under another id or passed off as another kind of record.
    """
    body = {key: value for key, value in payload.items() if key != SIGNATURE_FIELD}
    document = {
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": subject or "",
        "data": body,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The signature of `message`, base64 (standard alphabet)."""
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is `key`'s signature of `message`."""
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        key.verify(raw, message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
