"""Page tokens bound to the query that issued them."""

from __future__ import annotations

import base64
import json


def encode_token(offset: int, query: list[str]) -> str:
    """A token for the page starting at `offset` of `query`."""
    raw = json.dumps({"offset": offset, "query": query})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_token(token: str, query: list[str]) -> int:
    """The offset in `token`; ValueError when it is foreign or belongs to another query."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, issued_for = int(data["offset"]), data["query"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("is not a token this service issued") from exc
    if issued_for != query or offset < 0:
        raise ValueError("belongs to a different query")
    return offset
