"""Page tokens bound to the query they came from, so one cannot be replayed on another."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

# Tokens we issue are far shorter; anything longer is refused before it is decoded.
MAX_TOKEN_LENGTH = 1024


def _fingerprint(query: Mapping[str, object]) -> str:
    canonical = json.dumps(dict(query), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_page_token(cursor: str, query: Mapping[str, object]) -> str:
    """A token resuming after `cursor` for exactly this query."""
    raw = json.dumps({"after": cursor, "query": _fingerprint(query)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_page_token(token: str, query: Mapping[str, object]) -> str:
    """The cursor of a token this service issued for this query; ValueError otherwise."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("is not a token this service issued")
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        cursor, fingerprint = data["after"], data["query"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("is not a token this service issued") from exc
    if fingerprint != _fingerprint(query):
        raise ValueError("belongs to a different query")
    return str(cursor)
