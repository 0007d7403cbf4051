"""Append-only audit log in each service's own database: one keyed hash chain per county.

Every entry is sealed with HMAC-SHA256 under the service's audit key, which lives in a file
outside the database, and links to the entry before it in its county's chain. Someone who can
write to the database but lacks the key can neither edit an entry nor re-seal the chain after
an edit. Deleting the newest entries and moving the head back is caught by the checkpoints the
service publishes on Kafka (see `audit_checkpoints`); `verify` takes them as anchors.

Entries written before the chain was keyed (`seq` is NULL) form the *legacy* chain: plain
SHA-256 links ending at the frozen `audit_chain_head` row. Each county chain starts from a
keyed seal of that legacy head, so the legacy entries are covered by the keyed chains too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import DateTime, Index, Table, bindparam, func, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.audit_key import AuditKey
from services.runtime.db import AUDIT_KEY, as_utc
from services.runtime.telemetry import is_sensitive_key

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
LEGACY_CHAIN = "main"
VERIFY_CHUNK = 1000
ENTRY_SEAL = "xiezuo.audit.entry.v1"
GENESIS_SEAL = "xiezuo.audit.genesis.v1"
# Where a session's DeferredAppends lives while `deferred_appends` is open.
DEFERRED_APPENDS = "xiezuo.audit.deferred_appends"


class AuditEntry(SQLModel, table=True):
    """One audited action; `seq` is its position in its county's chain."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_record", "record_type", "record_id"),
        Index("ix_audit_entry_county_at", "county_id", "at"),
        Index("ux_audit_entry_chain", "county_id", "seq", unique=True),
    )

    # A row id only: gaps (rolled-back inserts) mean nothing. Legacy entries keep their old
    # chain position here, and `seq` is NULL for them.
    id: int | None = Field(default=None, primary_key=True)
    county_id: str = Field(max_length=64)
    seq: int | None = Field(default=None)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    record_type: str = Field(max_length=64)
    record_id: str = Field(max_length=128)
    detail: str
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


@dataclass(slots=True)
class ChainedEntry:
    """An entry chained in memory by a deferred append, stored at `DeferredAppends.write`.

    The fields of AuditEntry but a plain object: building a table model for each entry cost a
    consumer's batch more than the seal and the insert together.
    """

    county_id: str
    seq: int
    at: datetime
    actor: str
    action: str
    record_type: str
    record_id: str
    detail: str
    prev_hash: str
    entry_hash: str = ""


class AuditChainHead(SQLModel, table=True):
    """The frozen head of the unkeyed legacy chain (written before keying; never moves now)."""

    __tablename__ = "audit_chain_head"

    chain: str = Field(default=LEGACY_CHAIN, primary_key=True, max_length=16)
    last_id: int
    last_hash: str = Field(max_length=64)


class AuditCountyHead(SQLModel, table=True):
    """The last entry of one county's chain; its row lock serialises that county's appends."""

    __tablename__ = "audit_county_head"

    county_id: str = Field(primary_key=True, max_length=64)
    last_seq: int
    last_hash: str = Field(max_length=64)


class ChainAnchor(NamedTuple):
    """A head someone outside the database vouched for: entry `seq` of a county had this hash."""

    county_id: str
    seq: int
    head_hash: str


@dataclass(frozen=True)
class AuditProblem:
    """One thing wrong with one chain (`legacy` or a county id), at `seq` where known."""

    chain: str
    seq: int | None
    problem: str


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of checking every chain of a service's log."""

    entries_checked: int
    chains_checked: int
    anchors_checked: int
    problems: tuple[AuditProblem, ...]
    # Entries newer than their chain's last checkpoint: the window a key holder could still
    # rewrite unseen (and a truncation of it by anyone would be invisible).
    unanchored_entries: int = 0

    @property
    def ok(self) -> bool:
        """True when no chain has a problem."""
        return not self.problems


def audit_tables() -> list[Table]:
    """Return the audit tables, for `create_all(tables=...)` in tests."""
    return [_table(AuditEntry), _table(AuditChainHead), _table(AuditCountyHead)]


def legacy_entry_hash(
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
    """The unkeyed sha256 of a legacy entry's canonical JSON form (verification only)."""
    canonical = json.dumps(
        {
            "id": id,
            "county_id": county_id,
            "at": _instant(at),
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


def entry_seal(key: AuditKey, entry: AuditEntry | ChainedEntry) -> str:
    """The keyed hash of an entry as stored: every field but the row id and the seal itself."""
    return key.seal(
        ENTRY_SEAL,
        {
            "county_id": entry.county_id,
            "seq": entry.seq,
            "at": _instant(entry.at),
            "actor": entry.actor,
            "action": entry.action,
            "record_type": entry.record_type,
            "record_id": entry.record_id,
            "detail": entry.detail,
            "prev_hash": entry.prev_hash,
        },
    )


def genesis_seal(key: AuditKey, county_id: str, legacy_head: tuple[int, str]) -> str:
    """The `prev_hash` of a county chain's first entry, binding the legacy chain's head."""
    last_id, last_hash = legacy_head
    return key.seal(
        GENESIS_SEAL,
        {"county_id": county_id, "legacy_last_id": last_id, "legacy_last_hash": last_hash},
    )


def audit_key_of(session: AsyncSession) -> AuditKey:
    """The key the session's Database was opened with; refusing to audit without one."""
    key = session.info.get(AUDIT_KEY)
    if not isinstance(key, AuditKey):
        raise RuntimeError("no audit key: open the Database with audit_key=settings.audit_key()")
    return key


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
) -> AuditEntry | ChainedEntry:
    """Add an entry to its county's chain in the caller's transaction; the caller commits.

    The county's head row stays locked until the caller commits: a transaction that audits in
    several counties appends in county order, so two of them never wait on each other.
    """
    key = audit_key_of(session)
    detail_text = _detail_json(detail or {})
    when = as_utc(at or datetime.now(UTC))
    deferred = session.info.get(DEFERRED_APPENDS)
    if isinstance(deferred, DeferredAppends):
        head = deferred.heads.get(county_id)
        if head is None:
            head = deferred.heads[county_id] = await _lock_county_head(session, key, county_id)
        last_seq, last_hash = head
        # Chained in memory under the head this transaction holds; `write` stores it.
        chained = ChainedEntry(
            county_id=county_id,
            seq=last_seq + 1,
            at=when,
            actor=actor,
            action=action,
            record_type=record_type,
            record_id=str(record_id),
            detail=detail_text,
            prev_hash=last_hash,
        )
        chained.entry_hash = entry_seal(key, chained)
        deferred.heads[county_id] = (chained.seq, chained.entry_hash)
        deferred.entries.append(chained)
        return chained
    last_seq, last_hash = await _lock_county_head(session, key, county_id)
    entry = AuditEntry(
        county_id=county_id,
        seq=last_seq + 1,
        at=when,
        actor=actor,
        action=action,
        record_type=record_type,
        record_id=str(record_id),
        detail=detail_text,
        prev_hash=last_hash,
        entry_hash="",
    )
    entry.entry_hash = entry_seal(key, entry)
    session.add(entry)
    await _move_head(session, county_id, last_seq + 1, entry.entry_hash)
    # Flush (never commit) so a conflict surfaces here, inside the caller's transaction.
    await session.flush()
    return entry


@dataclass
class DeferredAppends:
    """Appends of one transaction chained in memory: each county head is locked and read once,
    the entries go in one INSERT and each head moves once, at `write`.

    The chain is the one `append` would write one entry at a time (same seq, links and seals).
    Nothing is stored until `write`, which the owner of the transaction must call before it
    commits; a part of the transaction that is rolled back (a savepoint) is `rewind`-ed to the
    `mark` taken before it, since its head locks are released with it.
    """

    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    entries: list[ChainedEntry] = field(default_factory=list)

    def mark(self) -> tuple[int, dict[str, tuple[int, str]]]:
        """The state to come back to if what follows is rolled back."""
        return len(self.entries), dict(self.heads)

    def rewind(self, mark: tuple[int, dict[str, tuple[int, str]]]) -> None:
        """Forget the entries and head locks taken since `mark`."""
        count, heads = mark
        del self.entries[count:]
        self.heads = dict(heads)

    async def write(self, session: AsyncSession) -> None:
        """Store the entries chained so far (one INSERT) and move each head once."""
        entries, self.entries = self.entries, []
        if entries:
            # One INSERT prepared once and run over every row by the driver (executemany),
            # cheaper than building and compiling a VALUES list of them for each batch.
            connection = await session.connection()
            await connection.execute(
                insert(_table(AuditEntry)), [_entry_row(entry) for entry in entries]
            )
        moved = {entry.county_id: (entry.seq, entry.entry_hash) for entry in entries}
        for county_id in sorted(moved):
            await _move_head(session, county_id, *moved[county_id])


@contextlib.asynccontextmanager
async def deferred_appends(session: AsyncSession) -> AsyncIterator[DeferredAppends]:
    """Defer the session's audit appends until the block ends, then write them together.

    For a transaction that audits many times (a consumer's batch): 3 statements per append
    become one head lock per county, one INSERT and one head update per county. Leaving the
    block by an exception writes nothing (the caller's transaction is being abandoned).
    """
    if DEFERRED_APPENDS in session.info:
        raise RuntimeError("audit appends are already deferred in this session")
    deferred = DeferredAppends()
    session.info[DEFERRED_APPENDS] = deferred
    try:
        yield deferred
        await deferred.write(session)
    finally:
        session.info.pop(DEFERRED_APPENDS, None)


async def sound_heads(session: AsyncSession, key: AuditKey) -> list[ChainAnchor]:
    """Each county chain's head, if its last entry carries a valid seal (what to checkpoint)."""
    heads = (
        await session.exec(
            select(AuditCountyHead.county_id, AuditCountyHead.last_seq, AuditCountyHead.last_hash)
            .where(col(AuditCountyHead.last_seq) > 0)
            .order_by(col(AuditCountyHead.county_id))
        )
    ).all()
    anchors: list[ChainAnchor] = []
    for county_id, last_seq, last_hash in heads:
        entry = (
            await session.exec(
                select(AuditEntry).where(
                    col(AuditEntry.county_id) == county_id, col(AuditEntry.seq) == last_seq
                )
            )
        ).first()
        # Never vouch for a head a database writer forged; `verify` will name the problem.
        if entry is not None and entry.entry_hash == last_hash == entry_seal(key, entry):
            anchors.append(ChainAnchor(county_id, last_seq, last_hash))
        else:
            log.warning(
                "audit chain head carries no valid seal; not checkpointed",
                extra={"county_id": county_id, "seq": last_seq},
            )
    return anchors


async def unsealed_heads(session: AsyncSession, key: AuditKey) -> int:
    """How many county chain heads fail their seal: an edited, forged or deleted newest entry.

    Cheap (one look per county), so a service can check it on a timer; only `verify` walks
    the whole chain and the checkpoints.
    """
    heads = (
        await session.exec(
            select(func.count())
            .select_from(AuditCountyHead)
            .where(col(AuditCountyHead.last_seq) > 0)
        )
    ).one()
    return int(heads) - len(await sound_heads(session, key))


async def verify(
    session: AsyncSession,
    key: AuditKey,
    *,
    anchors: Iterable[ChainAnchor] = (),
    chunk_size: int = VERIFY_CHUNK,
) -> AuditVerification:
    """Check the legacy chain, then every county chain against its seals, head and anchors."""
    by_county: dict[str, dict[int, set[str]]] = {}
    anchor_count = 0
    for anchor in anchors:
        by_county.setdefault(anchor.county_id, {}).setdefault(anchor.seq, set()).add(
            anchor.head_hash
        )
        anchor_count += 1
    legacy_head = await _read_legacy_head(session)
    checked, problem = await _verify_legacy(session, legacy_head, chunk_size)
    problems = [] if problem is None else [problem]
    unanchored = 0
    counties = set(by_county)
    counties.update((await session.exec(select(AuditCountyHead.county_id))).all())
    counties.update(
        (
            await session.exec(
                select(AuditEntry.county_id).where(col(AuditEntry.seq).is_not(None)).distinct()
            )
        ).all()
    )
    for county_id in sorted(counties):
        anchored = by_county.get(county_id, {})
        count, problem = await _verify_county(
            session,
            key,
            county_id,
            genesis_seal(key, county_id, legacy_head or (0, GENESIS_HASH)),
            anchored,
            chunk_size,
        )
        checked += count
        unanchored += max(0, count - max(anchored, default=0))
        if problem is not None:
            problems.append(problem)
    return AuditVerification(
        entries_checked=checked,
        chains_checked=len(counties),
        anchors_checked=anchor_count,
        problems=tuple(problems),
        unanchored_entries=unanchored,
    )


async def _verify_county(
    session: AsyncSession,
    key: AuditKey,
    county_id: str,
    genesis: str,
    anchored: dict[int, set[str]],
    chunk_size: int,
) -> tuple[int, AuditProblem | None]:
    """Walk one county chain in seq order; return (entries checked, first problem)."""

    def bad(seq: int | None, problem: str) -> tuple[int, AuditProblem]:
        return checked, AuditProblem(county_id, seq, problem)

    checked, expected, prev_hash = 0, 1, genesis
    head = await _read_county_head(session, county_id)
    target = 0
    while True:
        target = head[0] if head else 0
        # Only entries up to the head read so far: later ones may be appends committed since.
        while expected <= target:
            rows = (
                await session.exec(
                    select(AuditEntry)
                    .where(
                        col(AuditEntry.county_id) == county_id,
                        col(AuditEntry.seq) >= expected,
                        col(AuditEntry.seq) <= target,
                    )
                    .order_by(col(AuditEntry.seq))
                    .limit(chunk_size)
                    # The database is the evidence: never trust copies cached in this session.
                    .execution_options(populate_existing=True)
                )
            ).all()
            if not rows:
                return bad(expected, f"entries {expected}..{target} are missing")
            for entry in rows:
                if entry.seq != expected:
                    return bad(expected, f"entry {expected} is missing")
                if entry.prev_hash != prev_hash:
                    return bad(entry.seq, "prev_hash does not link to the entry before")
                if entry_seal(key, entry) != entry.entry_hash:
                    return bad(
                        entry.seq,
                        "entry_hash is not the keyed seal of the entry's content"
                        " (edited, or re-hashed without the key)",
                    )
                if anchored.get(expected, {entry.entry_hash}) != {entry.entry_hash}:
                    return bad(entry.seq, "entry differs from the one a checkpoint anchored")
                prev_hash = entry.entry_hash
                expected += 1
                checked += 1
        if head is not None and head[1] != prev_hash:
            return bad(target or None, "chain head hash does not match the last entry")
        newer = await _read_county_head(session, county_id)
        if newer == head:
            break
        head = newer
    beyond = (
        await session.exec(
            select(func.min(AuditEntry.seq)).where(
                col(AuditEntry.county_id) == county_id, col(AuditEntry.seq) > target
            )
        )
    ).one()
    if beyond is not None:
        why = "chain head row is missing" if head is None else "entry lies beyond the chain head"
        return bad(beyond, why)
    latest = max(anchored, default=0)
    if latest > target:
        return bad(
            target + 1,
            f"chain ends at entry {target} but a checkpoint anchored entry {latest}:"
            " entries after it were removed (truncated)",
        )
    return checked, None


async def _verify_legacy(
    session: AsyncSession, head: tuple[int, str] | None, chunk_size: int
) -> tuple[int, AuditProblem | None]:
    """Walk the frozen unkeyed chain (entries without `seq`) up to its head row."""

    def bad(seq: int | None, problem: str) -> tuple[int, AuditProblem]:
        return checked, AuditProblem("legacy", seq, problem)

    checked, expected, prev_hash = 0, 1, GENESIS_HASH
    target = head[0] if head else 0
    while expected <= target:
        rows = (
            await session.exec(
                select(AuditEntry)
                .where(
                    col(AuditEntry.seq).is_(None),
                    col(AuditEntry.id) >= expected,
                    col(AuditEntry.id) <= target,
                )
                .order_by(col(AuditEntry.id))
                .limit(chunk_size)
                .execution_options(populate_existing=True)
            )
        ).all()
        if not rows:
            return bad(expected, f"entries {expected}..{target} are missing")
        for entry in rows:
            if entry.id != expected:
                return bad(expected, f"entry {expected} is missing")
            if entry.prev_hash != prev_hash:
                return bad(entry.id, "prev_hash does not link to the entry before")
            if _legacy_hash_of(entry) != entry.entry_hash:
                return bad(entry.id, "entry_hash does not match the entry's content")
            prev_hash = entry.entry_hash
            expected += 1
            checked += 1
    if head is not None and head[1] != prev_hash:
        return bad(target or None, "chain head hash does not match the last entry")
    beyond = (
        await session.exec(
            select(func.min(AuditEntry.id)).where(
                col(AuditEntry.seq).is_(None), col(AuditEntry.id) > target
            )
        )
    ).one()
    if beyond is not None:
        why = "chain head row is missing" if head is None else "entry lies beyond the chain head"
        return bad(beyond, why)
    return checked, None


async def _lock_county_head(
    session: AsyncSession, key: AuditKey, county_id: str
) -> tuple[int, str]:
    """Lock the county's chain head for this transaction and return (last_seq, last_hash)."""
    # A no-op UPDATE takes the write lock before the read: on SQLite it starts the write
    # transaction (a plain SELECT would run outside it and let two writers read the same head);
    # on PostgreSQL it row-locks like the SELECT ... FOR UPDATE below. Other counties' heads
    # are other rows, so their appends do not wait for this one.
    # RETURNING reads the head in the same statement that locks it (one round trip per append
    # on the hot path; SQLite has it since 3.35).
    connection = await _connection_after_flush(session)
    locked = (await connection.execute(_HEAD_LOCKED, {"head_county_id": county_id})).first()
    if locked is not None:
        return locked[0], locked[1]
    legacy = await _read_legacy_head(session) or (0, GENESIS_HASH)
    await _insert_county_head(session, county_id, genesis_seal(key, county_id, legacy))
    head = await _read_county_head(session, county_id, for_update=True)
    if head is None:  # pragma: no cover - the row was just ensured in this transaction
        raise RuntimeError("audit chain head row could not be created")
    return head


async def _read_county_head(
    session: AsyncSession, county_id: str, *, for_update: bool = False
) -> tuple[int, str] | None:
    """Return a county head's (last_seq, last_hash), or None when the row is missing."""
    stmt = select(AuditCountyHead.last_seq, AuditCountyHead.last_hash).where(
        col(AuditCountyHead.county_id) == county_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.exec(stmt)).first()
    return None if row is None else (row[0], row[1])


async def _read_legacy_head(session: AsyncSession) -> tuple[int, str] | None:
    """Return the legacy head's (last_id, last_hash), or None when the row is missing."""
    row = (
        await session.exec(
            select(AuditChainHead.last_id, AuditChainHead.last_hash).where(
                col(AuditChainHead.chain) == LEGACY_CHAIN
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def _insert_county_head(session: AsyncSession, county_id: str, genesis: str) -> None:
    """Create a county's head row if no concurrent transaction did it first."""
    values = {"county_id": county_id, "last_seq": 0, "last_hash": genesis}
    dialect = (await session.connection()).dialect.name
    head = _table(AuditCountyHead)
    if dialect == "postgresql":
        await session.exec(postgresql.insert(head).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        await session.exec(sqlite.insert(head).values(values).on_conflict_do_nothing())
    else:
        await session.exec(head.insert().values(values))


async def _move_head(session: AsyncSession, county_id: str, seq: int, entry_hash: str) -> None:
    """Point a county head (locked by this transaction) at its newest entry."""
    connection = await _connection_after_flush(session)
    await connection.execute(
        _HEAD_MOVED, {"head_county_id": county_id, "last_seq": seq, "last_hash": entry_hash}
    )


async def _connection_after_flush(session: AsyncSession) -> AsyncConnection:
    """The session's connection, its pending objects written first.

    The head statements run on the connection (built once, below: building them per append
    cost more than running them), and an ORM statement would have flushed first; so the
    writes keep the order they had (nothing pending costs no statement).
    """
    await session.flush()
    return await session.connection()


def _entry_row(entry: AuditEntry | ChainedEntry) -> dict[str, Any]:
    """An entry's columns for a Core insert (the row id is the database's)."""
    return {
        "county_id": entry.county_id,
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "record_type": entry.record_type,
        "record_id": entry.record_id,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


def _legacy_hash_of(entry: AuditEntry) -> str:
    """Hash a legacy entry as stored."""
    return legacy_entry_hash(
        id=entry.id or 0,
        county_id=entry.county_id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        record_type=entry.record_type,
        record_id=entry.record_id,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
    )


def _instant(at: datetime) -> str:
    """The canonical text of an entry's time (microseconds, UTC)."""
    return as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


_HEADS = _table(AuditCountyHead)
# A no-op UPDATE that locks the head and returns it (see `_lock_county_head`).
_HEAD_LOCKED = (
    update(_HEADS)
    .where(_HEADS.c.county_id == bindparam("head_county_id"))
    .values(last_seq=_HEADS.c.last_seq)
    .returning(_HEADS.c.last_seq, _HEADS.c.last_hash)
)
# The new last_seq and last_hash are bound as its SET values when it runs.
_HEAD_MOVED = update(_HEADS).where(_HEADS.c.county_id == bindparam("head_county_id"))
