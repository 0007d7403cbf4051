"""Vault key rotation: re-wrap every data key under the new KEK; ciphertexts stay untouched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import SQLModel, col, select

from services.intake.store.tables import (
    ReporterMessageRow,
    ReportRow,
    SealedChannelDetailRow,
    SealedIdentityRow,
)
from services.intake.store.vault import Sealed, Vault
from services.runtime import audit
from services.runtime.db import Database

BATCH = 200


def _plain_sealed(row: Any) -> Sealed:
    return Sealed(row.kek_id, row.wrapped_key, row.nonce, row.ciphertext)


def _plain_store(row: Any, sealed: Sealed) -> None:
    row.kek_id, row.wrapped_key = sealed.kek_id, sealed.wrapped_key


def _content_sealed(row: Any) -> Sealed:
    return Sealed(
        row.content_kek_id, row.content_wrapped_key, row.content_nonce, row.content_ciphertext
    )


def _content_store(row: Any, sealed: Sealed) -> None:
    row.content_kek_id, row.content_wrapped_key = sealed.kek_id, sealed.wrapped_key


_Kind = tuple[
    type[SQLModel],
    Any,
    Any,
    Callable[[Any], Sealed],
    Callable[[Any, Sealed], None],
    Callable[[Any], bytes],
]
# (table, kek column, key column, read, write, associated data) for every sealed column set.
SEALED_KINDS: tuple[_Kind, ...] = (
    (
        ReportRow,
        ReportRow.content_kek_id,
        ReportRow.report_id,
        _content_sealed,
        _content_store,
        lambda row: row.report_id.encode(),
    ),
    (
        SealedIdentityRow,
        SealedIdentityRow.kek_id,
        SealedIdentityRow.report_id,
        _plain_sealed,
        _plain_store,
        lambda row: row.report_id.encode(),
    ),
    (
        SealedChannelDetailRow,
        SealedChannelDetailRow.kek_id,
        SealedChannelDetailRow.report_id,
        _plain_sealed,
        _plain_store,
        lambda row: row.report_id.encode(),
    ),
    (
        ReporterMessageRow,
        ReporterMessageRow.kek_id,
        ReporterMessageRow.message_id,
        _plain_sealed,
        _plain_store,
        lambda row: f"{row.report_id}/{row.message_id}".encode(),
    ),
)


async def rewrap_all(database: Database, vault: Vault, *, actor: str) -> dict[str, int]:
    """Re-wrap every row not yet under the vault's current KEK; safe to run again."""
    counts: dict[str, int] = {}
    for table, kek_column, key_column, read, write, context_of in SEALED_KINDS:
        done = 0
        while True:
            async with database.transaction() as session:
                query = (
                    select(table)
                    .where(col(kek_column) != vault.kek_id)
                    .order_by(col(key_column))
                    .limit(BATCH)
                )
                rows = list((await session.exec(query)).all())
                for row in rows:
                    write(row, vault.rewrap(read(row), context=context_of(row)))
                    session.add(row)
            done += len(rows)
            if len(rows) < BATCH:
                break
        counts[str(table.__tablename__)] = done
    async with database.transaction() as session:
        await audit.append(
            session,
            county_id="*",
            actor=actor,
            action="vault.key_rotated",
            record_type="vault",
            record_id=vault.kek_id,
            detail={"rows_rewrapped": sum(counts.values()), "tables": len(counts)},
            at=datetime.now(UTC),
        )
    return counts
