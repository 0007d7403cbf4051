"""Concurrent submissions commit in groups without losing a guarantee (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from sqlalchemy import event, func
from sqlmodel import select

from services.intake.store.reports import ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReportRow
from services.intake.store.vault import Vault
from services.runtime import audit
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase
from tests.integration.intake_submissions import letter_submission

BOOK = load_rule_book()
CLUE_TYPE = "xiezuo.intake.clue_registered.v1"
LINKED_TYPE = "xiezuo.intake.report_linked.v1"


def _count_commits(db: Database) -> list[int]:
    commits = [0]

    def committed(_connection: Any) -> None:
        commits[0] += 1

    event.listen(db.engine.sync_engine, "commit", committed)
    return commits


async def _count(db: Database, query: Any) -> int:
    async with db.session() as session:
        return int((await session.exec(query)).one())


async def test_identical_submissions_in_one_group_open_one_clue_with_every_guarantee(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    commits = _count_commits(db)
    others = [
        letter_submission(f"other-{n}", township=f"t{n % 3 + 2}", name=f"Zhang {n}")
        for n in range(8)
    ]
    same = [letter_submission(f"same-{n}") for n in range(8)]
    results = await asyncio.gather(*(registry.register(s, actor="officer") for s in same + others))
    # Sixteen submissions, fewer commits: they were written in groups.
    assert commits[0] < len(results)
    repeats = results[:8]
    assert len({r.clue_id for r in repeats}) == 1
    assert sorted(r.linked for r in repeats) == [False] + [True] * 7
    assert len({r.clue_id for r in results[8:]}) == 8
    assert len({r.receipt_code for r in results}) == 16
    kinds = select(func.count()).select_from(OutboxMessage)
    assert await _count(db, kinds.where(OutboxMessage.event_type == CLUE_TYPE)) == 9
    assert await _count(db, kinds.where(OutboxMessage.event_type == LINKED_TYPE)) == 7
    audited = select(func.count()).where(AuditEntry.action == "report.submitted")
    assert await _count(db, audited) == 16
    assert await _count(db, select(func.count()).select_from(ReportRow)) == 16


async def test_a_key_repeated_inside_a_group_is_stored_once_and_the_rest_commit(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    twice = letter_submission("dup")
    batch = [
        twice,
        replace(twice),
        *(letter_submission(f"k{n}", name=f"Wang {n}") for n in range(6)),
    ]
    results = await asyncio.gather(*(registry.register(s, actor="officer") for s in batch))
    first, second = results[0], results[1]
    assert first.report_id == second.report_id
    assert sorted([first.replayed, second.replayed]) == [False, True]
    assert not any(r.replayed for r in results[2:])
    assert await _count(db, select(func.count()).select_from(ReportRow)) == 7
    audited = select(func.count()).where(AuditEntry.action == "report.submitted")
    assert await _count(db, audited) == 7


async def test_groups_of_two_replicas_over_several_townships_neither_deadlock_nor_split(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    # Separate engines, as two replicas would have, each grouping its own submissions.
    replicas = [Database(db.url, audit_key=db.audit_key) for _ in range(2)]
    registries = [ReportRegistry(replica, Vault(bytes(32)), BOOK) for replica in replicas]
    townships = ["t1", "t2", "t3"]
    calls = [
        registries[n % 2].register(
            # The same matter on each township from both replicas, townships in mixed order.
            letter_submission(f"r{n}", township=townships[(n * 7) % 3], name="Zhao Qian"),
            actor="officer",
        )
        for n in range(24)
    ]
    try:
        results = await asyncio.gather(*calls)
    finally:
        for replica in replicas:
            await replica.dispose()
    by_township: dict[str, set[str]] = {}
    for n, result in enumerate(results):
        by_township.setdefault(townships[(n * 7) % 3], set()).add(result.clue_id)
    assert all(len(clues) == 1 for clues in by_township.values())
    assert sum(not result.linked for result in results) == 3
    kinds = select(func.count()).select_from(OutboxMessage)
    assert await _count(db, kinds.where(OutboxMessage.event_type == CLUE_TYPE)) == 3
    assert await _count(db, kinds.where(OutboxMessage.event_type == LINKED_TYPE)) == 21


async def test_a_group_audits_with_one_head_lock_one_insert_and_a_sound_chain(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    # The county's chain head exists before the group.
    await registry.register(letter_submission("first"), actor="officer")
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    batch = [
        letter_submission(f"g{n}", township=f"t{n % 3 + 1}", name=f"Sun {n}") for n in range(12)
    ]
    try:
        results = await asyncio.gather(*(registry.register(s, actor="officer") for s in batch))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    audit_inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT INTO AUDIT_ENTRY")]
    assert len(results) == 12
    # One audit INSERT per group (a group is one commit of several), not one per report.
    assert len(audit_inserts) < 12
    async with db.session() as session:
        verified = await audit.verify(session, audit.audit_key_of(session))
        seqs = (await session.exec(select(AuditEntry.seq))).all()
    assert verified.ok, verified
    assert sorted(seq or 0 for seq in seqs) == list(range(1, 14))
