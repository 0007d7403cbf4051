"""Idempotency keys of collaboration's commands: a repeated call returns the same letter."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.collaboration.store.tables import IdempotencyRow


class KeyReused(Exception):
    """The key was used before by this caller for a different request."""


def fingerprint(fields: dict[str, Any]) -> str:
    """sha256 of a request's fields (canonical JSON)."""
    text = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _key_hash(subject: str, call: str, key: str) -> str:
    return hashlib.sha256(f"{subject}|{call}|{key}".encode()).hexdigest()


async def earlier_result(
    session: AsyncSession, *, subject: str, call: str, key: str, request_print: str
) -> str | None:
    """The letter this key touched before (None if unused); KeyReused for another request."""
    row = await session.get(IdempotencyRow, _key_hash(subject, call, key))
    if row is None:
        return None
    if row.fingerprint != request_print:
        raise KeyReused(f"idempotency key {key!r} was used for a different {call}")
    return row.result_id


def remember(
    session: AsyncSession,
    *,
    subject: str,
    call: str,
    key: str,
    request_print: str,
    result_id: str,
    at: datetime,
) -> None:
    """Record what this key touched, in the caller's transaction."""
    session.add(
        IdempotencyRow(
            key_hash=_key_hash(subject, call, key),
            call=call,
            fingerprint=request_print,
            result_id=result_id,
            created_at=at,
        )
    )
