"""Idempotency keys of commands: a retried command answers what the first one answered."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.store.tables import CommandReceipt


class KeyReused(Exception):
    """The idempotency key was used for a different command or request."""


def fingerprint(command: str, request: Any) -> str:
    """A stable digest of a command's request."""
    canonical = json.dumps({"command": command, "request": request}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def earlier_result(
    session: AsyncSession, *, key: str, actor: str, command: str, print_: str
) -> dict[str, Any] | None:
    """The stored result of the same command under `key`, None when the key is new."""
    receipt = await session.get(CommandReceipt, key)
    if receipt is None:
        return None
    if receipt.actor != actor or receipt.command != command or receipt.fingerprint != print_:
        raise KeyReused(f"idempotency key {key!r} was used for a different request")
    result: dict[str, Any] = json.loads(receipt.result)
    return result


def keep_result(
    session: AsyncSession,
    *,
    key: str,
    actor: str,
    command: str,
    print_: str,
    result: dict[str, Any],
) -> None:
    """Remember the result under `key` in the command's own transaction."""
    session.add(
        CommandReceipt(
            idempotency_key=key,
            actor=actor,
            command=command,
            fingerprint=print_,
            result=json.dumps(result, sort_keys=True),
        )
    )
