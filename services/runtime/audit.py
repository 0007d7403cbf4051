"""Append-only, hash-chained audit log kept in each service's own database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import DateTime, Index, Table, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.db import as_utc
from services.runtime.telemetry import is_sensitive_key

GENESIS_HASH = "0" * 64
CHAIN = "main"
VERIFY_CHUNK = 1000


class AuditEntry(SQLModel, table=True):
    """One audited action; `id` is the position in the chain."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_record", "record_type", "record_id"),
        Index("ix_audit_entry_county_at", "county_id", "at"),
    )

    # Assigned from the chain head under its lock, not by a sequence: sequences leave gaps on
    # rollback, and a gap must only ever mean a deleted entry.
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    county_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    record_type: str = Field(max_length=64)
    record_id: str = Field(max_length=128)
    detail: str
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The last entry of the chain; its row lock serialises appends."""

    __tablename__ = "audit_chain_head"

    chain: str = Field(default=CHAIN, primary_key=True, max_length=16)
    last_id: int
    last_hash: str = Field(max_length=64)


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of checking the whole chain."""

    ok: bool
    entries_checked: int
    first_bad_id: int | None
    problem: str | None


def audit_tables() -> list[Table]:
    """Return the audit tables, for `create_all(tables=...)` and migrations."""
    return [_table(AuditEntry), _table(AuditChainHead)]


class _Operations(Protocol):
    """The part of Alembic's `op` used here."""

    def create_table(self, table_name: str, *columns: Any, **kw: Any) -> Table: ...

    def bulk_insert(self, table: Table, rows: list[dict[str, Any]]) -> None: ...


def audit_table_ddl(op: _Operations) -> None:
    """Create both audit tables and the genesis head row from an Alembic migration."""
    created: dict[str, Table] = {}
    for table in audit_tables():
        # Fresh copies: a Column belongs to exactly one Table, and these already belong to ours.
        columns = [c._copy() for c in table.columns]
        indexes = [
            Index(i.name, *(c.name for c in i.columns), unique=i.unique) for i in table.indexes
        ]
        created[table.name] = op.create_table(table.name, *columns, *indexes)
    head = created[_table(AuditChainHead).name]
    # Seeded here so concurrent first appends never race to create the row.
    op.bulk_insert(head, [{"chain": CHAIN, "last_id": 0, "last_hash": GENESIS_HASH}])


def entry_hash(
    *,
    id: int,
    county_id: str,
    at: datetime,
    actor: str,
    action: str,
    record_type: str,
    record_id: str,
    detail: str,
    prev_hash: str,
) -> str:
    """Return the hex sha256 of an entry's canonical JSON form."""
    canonical = json.dumps(
        {
            "id": id,
            "county_id": county_id,
            "at": as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "action": action,
            "record_type": record_type,
            "record_id": record_id,
            "detail": detail,
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def append(
    session: AsyncSession,
    *,
    county_id: str,
    actor: str,
    action: str,
    record_type: str,
    record_id: str | int | UUID,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add an entry to the chain in the caller's transaction; the caller commits."""
    detail_text = _detail_json(detail or {})
    when = as_utc(at or datetime.now(UTC))
    last_id, last_hash = await _lock_head(session)
    entry = AuditEntry(
        id=last_id + 1,
        county_id=county_id,
        at=when,
        actor=actor,
        action=action,
        record_type=record_type,
        record_id=str(record_id),
        detail=detail_text,
        prev_hash=last_hash,
        entry_hash="",
    )
    entry.entry_hash = _hash_of(entry)
    session.add(entry)
    await session.exec(
        update(AuditChainHead)
        .where(col(AuditChainHead.chain) == CHAIN)
        .values(last_id=entry.id, last_hash=entry.entry_hash)
    )
    # Flush (never commit) so a conflict surfaces here, inside the caller's transaction.
    await session.flush()
    return entry


async def verify(session: AsyncSession, *, chunk_size: int = VERIFY_CHUNK) -> AuditVerification:
    """Recompute every hash and link in id order and check them against the head."""
    checked = 0
    expected_id = 1
    prev_hash = GENESIS_HASH
    head = await _read_head(session)
    while True:
        target = head[0] if head else 0
        # Only entries up to the head read so far: later ones may be appends committed since.
        while expected_id <= target:
            rows = (
                await session.exec(
                    select(AuditEntry)
                    .where(col(AuditEntry.id) >= expected_id, col(AuditEntry.id) <= target)
                    .order_by(col(AuditEntry.id))
                    .limit(chunk_size)
                    # The database is the evidence: never trust copies cached in this session.
                    .execution_options(populate_existing=True)
                )
            ).all()
            if not rows:
                return _bad(checked, expected_id, f"entries {expected_id}..{target} are missing")
            for entry in rows:
                if entry.id != expected_id:
                    return _bad(checked, expected_id, f"entry {expected_id} is missing")
                if entry.prev_hash != prev_hash:
                    return _bad(checked, entry.id, "prev_hash does not link to the entry before")
                if _hash_of(entry) != entry.entry_hash:
                    return _bad(checked, entry.id, "entry_hash does not match the entry's content")
                prev_hash = entry.entry_hash
                expected_id += 1
                checked += 1
        if head is not None and head[1] != prev_hash:
            return _bad(checked, target or None, "chain head hash does not match the last entry")
        newer = await _read_head(session)
        if newer == head:
            break
        head = newer
    beyond = (
        await session.exec(select(func.min(AuditEntry.id)).where(col(AuditEntry.id) > target))
    ).one()
    if beyond is not None:
        why = "chain head row is missing" if head is None else "entry lies beyond the chain head"
        return _bad(checked, beyond, why)
    return AuditVerification(ok=True, entries_checked=checked, first_bad_id=None, problem=None)


async def _lock_head(session: AsyncSession) -> tuple[int, str]:
    """Lock the chain head for this transaction and return (last_id, last_hash)."""
    # A no-op UPDATE takes the write lock before the read: on SQLite it starts the write
    # transaction (a plain SELECT would run outside it and let two writers read the same head);
    # on PostgreSQL it row-locks like the SELECT ... FOR UPDATE below.
    locked = await session.exec(
        update(AuditChainHead)
        .where(col(AuditChainHead.chain) == CHAIN)
        .values(last_id=AuditChainHead.last_id)
    )
    if locked.rowcount == 0:
        await _insert_genesis_head(session)
    head = await _read_head(session, for_update=True)
    if head is None:  # pragma: no cover - the row was just ensured in this transaction
        raise RuntimeError("audit chain head row could not be created")
    return head


async def _read_head(session: AsyncSession, *, for_update: bool = False) -> tuple[int, str] | None:
    """Return the head's (last_id, last_hash), or None when the row is missing."""
    stmt = select(AuditChainHead.last_id, AuditChainHead.last_hash).where(
        col(AuditChainHead.chain) == CHAIN
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.exec(stmt)).first()
    return None if row is None else (row[0], row[1])


async def _insert_genesis_head(session: AsyncSession) -> None:
    """Create the head row if no concurrent transaction did it first."""
    values = {"chain": CHAIN, "last_id": 0, "last_hash": GENESIS_HASH}
    dialect = (await session.connection()).dialect.name
    head = _table(AuditChainHead)
    if dialect == "postgresql":
        await session.exec(postgresql.insert(head).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        await session.exec(sqlite.insert(head).values(values).on_conflict_do_nothing())
    else:
        await session.exec(head.insert().values(values))


def _hash_of(entry: AuditEntry) -> str:
    """Hash an entry as stored."""
    return entry_hash(
        id=entry.id,
        county_id=entry.county_id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        record_type=entry.record_type,
        record_id=entry.record_id,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
    )


def _detail_json(detail: Mapping[str, Any]) -> str:
    """Serialise detail canonically, refusing fields that may carry the reporter's identity."""
    _refuse_identity(detail)
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _refuse_identity(value: Any) -> None:
    """Raise if any key, at any depth, may carry the reporter's identity."""
    # The log is append-only and tamper-evident: an identity written here could never be erased.
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if is_sensitive_key(str(key)):
                raise ValueError(f"audit detail must not carry {key!r}")
            _refuse_identity(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            _refuse_identity(inner)


def _table(model: type[SQLModel]) -> Table:
    """Return a table model's Core Table."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _bad(checked: int, bad_id: int | None, problem: str) -> AuditVerification:
    """Build a failed verification."""
    return AuditVerification(
        ok=False, entries_checked=checked, first_bad_id=bad_id, problem=problem
    )
