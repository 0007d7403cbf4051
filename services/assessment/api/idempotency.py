"""Running a command once per idempotency key: the scaffolding every command shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.store.receipts import KeyReused, earlier_result, fingerprint, keep_result
from services.runtime.db import Database
from services.runtime.grpc.errors import FieldViolation, InvalidArgument

Work: TypeAlias = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


def required(request: Any, *names: str) -> list[FieldViolation]:
    """A violation for each of `names` the request leaves empty."""
    return [FieldViolation(name, "is required") for name in names if not getattr(request, name)]


async def run_once(
    db: Database, *, key: str, actor: str, command: str, request: Any, work: Work
) -> dict[str, Any]:
    """Run `work` in one transaction and keep its result under `key`.

    A retry of the same request answers the first result without running `work` again; the
    key reused for anything else is INVALID_ARGUMENT.
    """
    print_ = fingerprint(command, request)
    async with db.transaction() as session:
        try:
            earlier = await earlier_result(
                session, key=key, actor=actor, command=command, print_=print_
            )
        except KeyReused as exc:
            raise InvalidArgument([FieldViolation("idempotency_key", str(exc))]) from exc
        if earlier is not None:
            return earlier
        result = await work(session)
        keep_result(session, key=key, actor=actor, command=command, print_=print_, result=result)
    return result
