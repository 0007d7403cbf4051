"""The keyed, per-county audit chains on a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.audit import (
    GENESIS_HASH,
    AuditChainHead,
    AuditCountyHead,
    AuditEntry,
    AuditVerification,
    ChainAnchor,
    append,
    audit_tables,
    entry_seal,
    genesis_seal,
    legacy_entry_hash,
    sound_heads,
    verify,
)
from services.runtime.audit_key import AuditKey, load_audit_key
from services.runtime.db import AUDIT_KEY
from services.runtime.settings import Settings

COUNTY, OTHER = "330102", "330103"


@pytest.fixture
def key() -> AuditKey:
    return AuditKey.generate()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An async engine on a fresh SQLite file holding only the audit tables (as migrated)."""
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=audit_tables()))
        await conn.execute(
            text("INSERT INTO audit_chain_head VALUES ('main', 0, :h)"), {"h": GENESIS_HASH}
        )
    yield eng
    await eng.dispose()


def _session(engine: AsyncEngine, key: AuditKey) -> AsyncSession:
    return AsyncSession(engine, info={AUDIT_KEY: key})


async def _append(
    engine: AsyncEngine, key: AuditKey, n: int, *, county: str = COUNTY, actor: str = "u-1"
) -> None:
    """Append n entries, each in its own committed transaction."""
    for i in range(n):
        async with _session(engine, key) as session:
            await append(
                session,
                county_id=county,
                actor=actor,
                action="clue.read" if i % 2 else "report.submitted",
                record_type="clue",
                record_id=f"clue-{i}",
                detail={"reason": "review", "n": i, "注": "中文"},
            )
            await session.commit()


async def _verify(
    engine: AsyncEngine,
    key: AuditKey,
    anchors: tuple[ChainAnchor, ...] = (),
    chunk_size: int = 1000,
) -> AuditVerification:
    async with AsyncSession(engine) as session:
        return await verify(session, key, anchors=anchors, chunk_size=chunk_size)


async def _sql(engine: AsyncEngine, statement: str) -> None:
    """Run raw SQL behind the audit module's back, as a tamperer would."""
    async with engine.begin() as conn:
        await conn.execute(text(statement))


async def _entries(engine: AsyncEngine, county: str = COUNTY) -> list[AuditEntry]:
    async with AsyncSession(engine) as session:
        rows = await session.exec(
            select(AuditEntry).where(AuditEntry.county_id == county).order_by(col(AuditEntry.seq))
        )
        return list(rows.all())


async def _anchors(engine: AsyncEngine, key: AuditKey) -> tuple[ChainAnchor, ...]:
    async with AsyncSession(engine) as session:
        return tuple(await sound_heads(session, key))


def _problem(result: AuditVerification) -> tuple[str, int | None, str]:
    assert len(result.problems) == 1, result
    only = result.problems[0]
    return only.chain, only.seq, only.problem


async def test_each_county_has_its_own_valid_chain(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 5)
    await _append(engine, key, 3, county=OTHER)

    result = await _verify(engine, key)
    assert result.ok, result
    assert (result.entries_checked, result.chains_checked) == (8, 2)

    entries = await _entries(engine)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == genesis_seal(key, COUNTY, (0, GENESIS_HASH))
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    assert all(e.entry_hash == entry_seal(key, e) for e in entries)
    assert [e.seq for e in await _entries(engine, OTHER)] == [1, 2, 3]
    async with AsyncSession(engine) as session:
        heads = {h.county_id: h for h in (await session.exec(select(AuditCountyHead))).all()}
        legacy = (await session.exec(select(AuditChainHead))).one()
    assert (heads[COUNTY].last_seq, heads[COUNTY].last_hash) == (5, entries[-1].entry_hash)
    assert heads[OTHER].last_seq == 3
    # The legacy head is frozen: keyed appends never move it.
    assert (legacy.last_id, legacy.last_hash) == (0, GENESIS_HASH)
    assert json.loads(entries[2].detail) == {"reason": "review", "n": 2, "注": "中文"}


async def test_append_without_the_key_is_refused(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        with pytest.raises(RuntimeError, match="audit key"):
            await append(
                session, county_id=COUNTY, actor="u", action="a", record_type="r", record_id=1
            )


async def test_append_leaves_commit_to_the_caller(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 2)
    async with _session(engine, key) as session:
        entry = await append(
            session,
            county_id=COUNTY,
            actor="u-2",
            action="case.updated",
            record_type="case",
            record_id=42,
        )
        assert entry.seq == 3
        await session.rollback()

    assert [e.seq for e in await _entries(engine)] == [1, 2]
    assert (await _verify(engine, key)).ok


async def test_foreign_timezones_seal_the_same_after_a_round_trip(
    engine: AsyncEngine, key: AuditKey
) -> None:
    at = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    async with _session(engine, key) as session:
        entry = await append(
            session,
            county_id=COUNTY,
            actor="u-1",
            action="report.submitted",
            record_type="report",
            record_id="r-1",
            at=at,
        )
        assert entry.at == at.astimezone(UTC)
        await session.commit()
    assert (await _verify(engine, key)).ok


async def test_edited_detail_is_reported_by_county_and_seq(
    engine: AsyncEngine, key: AuditKey
) -> None:
    await _append(engine, key, 5)
    await _sql(
        engine,
        f"""UPDATE audit_entry SET detail = '{{"reason":"none"}}'
        WHERE county_id = '{COUNTY}' AND seq = 3""",
    )

    chain, seq, problem = _problem(await _verify(engine, key))
    assert (chain, seq) == (COUNTY, 3)
    assert "keyed seal" in problem


async def test_chain_rewritten_without_the_key_is_detected(
    engine: AsyncEngine, key: AuditKey
) -> None:
    """Edit entry 2 and re-seal it and every later entry and the head, with a guessed key."""
    await _append(engine, key, 5)
    forger = AuditKey.generate()
    async with AsyncSession(engine) as session:
        rows = (
            await session.exec(
                select(AuditEntry).where(col(AuditEntry.seq) >= 2).order_by(col(AuditEntry.seq))
            )
        ).all()
        prev = (await _entries(engine))[0].entry_hash
        for row in rows:
            if row.seq == 2:
                row.actor = "someone-else"
            row.prev_hash = prev
            row.entry_hash = entry_seal(forger, row)
            prev = row.entry_hash
            session.add(row)
        head = (await session.exec(select(AuditCountyHead))).one()
        head.last_hash = prev
        session.add(head)
        await session.commit()

    assert _problem(await _verify(engine, key))[:2] == (COUNTY, 2)


async def test_deleted_middle_entry_is_detected(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 5)
    await _sql(engine, "DELETE FROM audit_entry WHERE seq = 3")

    chain, seq, problem = _problem(await _verify(engine, key))
    assert (chain, seq) == (COUNTY, 3) and "missing" in problem


async def test_deleted_last_entry_is_revealed_by_the_head(
    engine: AsyncEngine, key: AuditKey
) -> None:
    await _append(engine, key, 5)
    await _sql(engine, "DELETE FROM audit_entry WHERE seq = 5")

    result = await _verify(engine, key)
    assert _problem(result)[:2] == (COUNTY, 5)
    assert result.entries_checked == 4


async def test_truncation_with_the_head_moved_back_needs_a_checkpoint(
    engine: AsyncEngine, key: AuditKey
) -> None:
    await _append(engine, key, 5)
    anchors = await _anchors(engine, key)
    assert anchors == (ChainAnchor(COUNTY, 5, (await _entries(engine))[-1].entry_hash),)
    fourth = (await _entries(engine))[3].entry_hash
    await _sql(engine, "DELETE FROM audit_entry WHERE seq = 5")
    await _sql(engine, f"UPDATE audit_county_head SET last_seq = 4, last_hash = '{fourth}'")

    # Inside the database alone the shorter chain is consistent: only the anchor reveals it.
    assert (await _verify(engine, key)).ok
    chain, seq, problem = _problem(await _verify(engine, key, anchors))
    assert (chain, seq) == (COUNTY, 5) and "truncated" in problem


async def test_whole_county_chain_deleted_is_revealed_by_its_checkpoint(
    engine: AsyncEngine, key: AuditKey
) -> None:
    await _append(engine, key, 2)
    await _append(engine, key, 2, county=OTHER)
    anchors = await _anchors(engine, key)
    await _sql(engine, f"DELETE FROM audit_entry WHERE county_id = '{OTHER}'")
    await _sql(engine, f"DELETE FROM audit_county_head WHERE county_id = '{OTHER}'")

    chain, seq, problem = _problem(await _verify(engine, key, anchors))
    assert (chain, seq) == (OTHER, 1) and "truncated" in problem


async def test_rewrite_with_the_key_behind_a_checkpoint_is_detected(
    engine: AsyncEngine, key: AuditKey
) -> None:
    """Even the key's holder cannot change what a checkpoint vouched for."""
    await _append(engine, key, 3)
    anchors = await _anchors(engine, key)
    async with AsyncSession(engine) as session:
        rows = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))).all()
        prev = rows[0].prev_hash
        for row in rows:
            row.action = "nothing.happened"
            row.prev_hash = prev
            row.entry_hash = entry_seal(key, row)
            prev = row.entry_hash
            session.add(row)
        head = (await session.exec(select(AuditCountyHead))).one()
        head.last_hash = prev
        session.add(head)
        await session.commit()

    assert (await _verify(engine, key)).ok  # the documented limit without anchors
    chain, seq, problem = _problem(await _verify(engine, key, anchors))
    assert (chain, seq) == (COUNTY, 3) and "checkpoint" in problem


async def test_conflicting_checkpoints_are_detected(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 3)
    good = await _anchors(engine, key)
    forged = ChainAnchor(COUNTY, 2, "f" * 64)
    assert _problem(await _verify(engine, key, (*good, forged)))[:2] == (COUNTY, 2)


async def test_tampered_head_is_detected(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 3)
    await _sql(engine, "UPDATE audit_county_head SET last_seq = 2")

    chain, seq, problem = _problem(await _verify(engine, key))
    assert (chain, seq) == (COUNTY, 2) and "head" in problem


async def test_missing_head_row_is_detected(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 2)
    await _sql(engine, "DELETE FROM audit_county_head")

    chain, seq, problem = _problem(await _verify(engine, key))
    assert (chain, seq) == (COUNTY, 1) and "head" in problem


async def test_sound_heads_never_vouch_for_a_forged_head(
    engine: AsyncEngine, key: AuditKey, caplog: pytest.LogCaptureFixture
) -> None:
    await _append(engine, key, 2)
    await _append(engine, key, 2, county=OTHER)
    await _sql(engine, f"UPDATE audit_entry SET actor = 'x' WHERE county_id = '{OTHER}'")
    with caplog.at_level("WARNING", logger="services.runtime.audit"):
        assert [a.county_id for a in await _anchors(engine, key)] == [COUNTY]
    assert [r.county_id for r in caplog.records] == [OTHER]  # type: ignore[attr-defined]


async def test_verify_streams_in_chunks(engine: AsyncEngine, key: AuditKey) -> None:
    await _append(engine, key, 10)
    result = await _verify(engine, key, chunk_size=3)
    assert (result.ok, result.entries_checked) == (True, 10)

    # A gap exactly on a chunk boundary must still be seen.
    await _sql(engine, "DELETE FROM audit_entry WHERE seq = 7")
    result = await _verify(engine, key, chunk_size=3)
    assert _problem(result)[:2] == (COUNTY, 7)
    assert result.entries_checked == 6


async def test_empty_log_verifies(engine: AsyncEngine, key: AuditKey) -> None:
    result = await _verify(engine, key)
    assert (result.ok, result.entries_checked) == (True, 0)


async def test_concurrent_appends_keep_valid_chains(engine: AsyncEngine, key: AuditKey) -> None:
    writers, each = 6, 6
    await asyncio.gather(
        *(
            _append(engine, key, each, county=(COUNTY, OTHER)[w % 2], actor=f"u-{w}")
            for w in range(writers)
        )
    )

    result = await _verify(engine, key)
    assert result.ok, result
    assert result.entries_checked == writers * each
    assert [e.seq for e in await _entries(engine, OTHER)] == list(range(1, 19))


async def test_reporter_identity_is_refused_in_detail(engine: AsyncEngine, key: AuditKey) -> None:
    async with _session(engine, key) as session:
        with pytest.raises(ValueError, match="phone"):
            await append(
                session,
                county_id=COUNTY,
                actor="u-1",
                action="report.submitted",
                record_type="report",
                record_id="r-1",
                detail={"channel": "letter", "contacts": [{"phone": "13800000000"}]},
            )
        await session.rollback()
    assert (await _verify(engine, key)).entries_checked == 0


async def _write_legacy(engine: AsyncEngine, n: int) -> None:
    """Entries as the unkeyed chain wrote them before keying, with the legacy head."""
    prev = GENESIS_HASH
    async with AsyncSession(engine) as session:
        for i in range(1, n + 1):
            row = AuditEntry(
                id=i,
                county_id=COUNTY,
                at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
                actor="old",
                action="clue.read",
                record_type="clue",
                record_id=f"c-{i}",
                detail="{}",
                prev_hash=prev,
                entry_hash="",
            )
            row.entry_hash = legacy_entry_hash(**row.model_dump(exclude={"seq", "entry_hash"}))
            prev = row.entry_hash
            session.add(row)
        head = (await session.exec(select(AuditChainHead))).one()
        head.last_id, head.last_hash = n, prev
        session.add(head)
        await session.commit()


async def test_legacy_entries_verify_and_are_bound_into_the_keyed_chains(
    engine: AsyncEngine, key: AuditKey
) -> None:
    await _write_legacy(engine, 4)
    await _append(engine, key, 2)
    result = await _verify(engine, key)
    assert result.ok, result
    assert result.entries_checked == 6

    # Rewrite the whole legacy chain consistently (it has no key to stop that)...
    async with AsyncSession(engine) as session:
        rows = (
            await session.exec(
                select(AuditEntry).where(col(AuditEntry.seq).is_(None)).order_by(col(AuditEntry.id))
            )
        ).all()
        prev = GENESIS_HASH
        for row in rows:
            row.actor = "rewritten"
            row.prev_hash = prev
            row.entry_hash = legacy_entry_hash(**row.model_dump(exclude={"seq", "entry_hash"}))
            prev = row.entry_hash
            session.add(row)
        head = (await session.exec(select(AuditChainHead))).one()
        head.last_hash = prev
        session.add(head)
        await session.commit()

    # ...and the keyed chain, sealed from the old legacy head, no longer links.
    chain, seq, problem = _problem(await _verify(engine, key))
    assert (chain, seq) == (COUNTY, 1) and "prev_hash" in problem


async def test_legacy_tail_deleted_is_detected(engine: AsyncEngine, key: AuditKey) -> None:
    await _write_legacy(engine, 3)
    await _sql(engine, "DELETE FROM audit_entry WHERE id = 3")
    chain, seq, _ = _problem(await _verify(engine, key))
    assert (chain, seq) == ("legacy", 3)


def test_key_file_is_created_once_and_a_configured_one_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-intake.key"
    first = load_audit_key(path, create=True)
    assert load_audit_key(path, create=True) == first == load_audit_key(path, create=False)
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileNotFoundError):
        load_audit_key(tmp_path / "mounted" / "missing.key", create=False)
    raw = tmp_path / "raw.key"
    raw.write_bytes(bytes(range(32)))
    assert load_audit_key(raw, create=False).secret == bytes(range(32))
    assert first.secret.hex() not in repr(first)


def test_settings_read_a_configured_key_and_never_create_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(FileNotFoundError):
        Settings("cases").audit_key(create=False)  # what `xiezuo audit verify` asks for
    dev = Settings("cases").audit_key()
    assert (tmp_path / "state" / "keys" / "audit-cases.key").is_file()
    assert Settings("cases").audit_key() == dev != Settings("intake").audit_key()

    mounted = tmp_path / "secret" / "audit-cases.key"
    monkeypatch.setenv("XIEZUO_CASES_AUDIT_KEY_FILE", str(mounted))
    with pytest.raises(FileNotFoundError):
        Settings("cases").audit_key()
    mounted.parent.mkdir()
    mounted.write_text("ab" * 32 + "\n")
    assert Settings("cases").audit_key().secret == bytes([0xAB]) * 32
