"""A group's rows go in with one INSERT per table; guarantees hold (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import event, func
from sqlmodel import col, select

from services.contracts.staffing import TownshipPlaced
from services.intake.domain.report import fingerprint
from services.intake.store.reports import ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import DuplicateCandidateRow, ReportMatchKeyRow, ReportRow
from services.intake.store.townships import TownshipRegistry, record_placement
from services.intake.store.vault import Vault
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase
from tests.integration.intake_submissions import letter_submission

BOOK = load_rule_book()
CLUE_TYPE = "xiezuo.intake.clue_registered.v1"


async def _count(db: Database, query: Any) -> int:
    async with db.session() as session:
        return int((await session.exec(query)).one())


def _count_inserts(db: Database) -> dict[str, int]:
    """INSERT statements per table (an executemany counts once)."""
    inserts: dict[str, int] = {}

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        if words[:2] == ["INSERT", "INTO"]:
            inserts[words[2]] = inserts.get(words[2], 0) + 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", executed)
    return inserts


async def test_a_group_writes_each_table_with_one_insert_and_outbox_rows_in_order(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    drafts = [
        registry._draft(s, fingerprint(s), actor="officer")
        for s in (letter_submission(f"k{n}", name=f"Zhang {n}") for n in range(6))
    ]
    inserts = _count_inserts(db)
    results = await registry._apply_group(drafts)
    assert all(r is not None and not r.replayed for r in results)
    assert inserts["report"] == 1
    assert inserts["report_match_key"] == 1
    assert inserts["intake_clue"] == 1
    assert inserts["outbox_message"] == 1
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert [row.subject for row in rows] == [d.clue_id for d in drafts]


async def test_reports_clues_and_their_events_get_time_ordered_ids(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    drafts = [
        registry._draft(s, fingerprint(s), actor="officer") for s in [letter_submission("k1")]
    ]
    await registry._apply_group(drafts)
    async with db.session() as session:
        (row,) = (await session.exec(select(OutboxMessage))).all()
    (draft,) = drafts
    ids = [
        uuid.UUID(hex=draft.report_id.removeprefix("rpt-")),
        uuid.UUID(hex=draft.clue_id.removeprefix("clue-")),
        uuid.UUID(row.event_id),
    ]
    # Version 7: new rows land at the end of every index keyed by them (runtime/ids.py).
    assert [made.version for made in ids] == [7, 7, 7]
    assert all(abs((made.int >> 80) - draft.now.timestamp() * 1000) < 60_000 for made in ids)


async def test_a_failing_draft_in_a_written_run_is_undone_alone(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    stored = await registry.register(letter_submission("first", name="Qian Yi"), actor="officer")
    subs = [letter_submission(f"g{n}", name=f"Sun {n}") for n in range(3)]
    drafts = [registry._draft(s, fingerprint(s), actor="officer") for s in subs]
    # The middle one collides with a stored report's id: its run's INSERT fails.
    drafts[1].report["report_id"] = stored.report_id
    results = await registry._apply_group(drafts)
    assert results[1] is None
    assert results[0] is not None and results[2] is not None
    assert await _count(db, select(func.count()).select_from(ReportRow)) == 3
    clues = select(func.count()).where(OutboxMessage.event_type == CLUE_TYPE)
    assert await _count(db, clues) == 3
    audited = select(func.count()).where(AuditEntry.action == "report.submitted")
    assert await _count(db, audited) == 3
    keys = select(func.count(func.distinct(ReportMatchKeyRow.report_id)))
    assert await _count(db, keys) == 3


async def test_a_stored_key_is_answered_by_the_group_as_a_replay(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    first = await registry.register(letter_submission("again"), actor="officer")
    retried = letter_submission("again")
    changed = replace(letter_submission("changed"), content="Other text.")
    await registry.register(changed, actor="officer")
    results = await asyncio.gather(
        registry.register(retried, actor="officer"),
        registry.register(replace(changed, content="Different now."), actor="officer"),
        *(
            registry.register(letter_submission(f"n{n}", name=f"Wu {n}"), actor="officer")
            for n in range(4)
        ),
    )
    assert results[0].replayed and results[0].report_id == first.report_id
    assert results[0].receipt_code == "" and not results[0].conflicting
    assert results[1].replayed and results[1].conflicting
    assert not any(r.replayed for r in results[2:])
    assert await _count(db, select(func.count()).select_from(ReportRow)) == 6


async def test_a_near_duplicate_earlier_in_the_same_group_is_flagged(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
    subs = [letter_submission("a", name="Zhao Qian"), letter_submission("b", name="Zhao Qia")]
    drafts = [registry._draft(s, fingerprint(s), actor="officer") for s in subs]
    results = await registry._apply_group(drafts)
    assert results[0] is not None and results[1] is not None
    assert results[0].clue_id != results[1].clue_id
    async with db.session() as session:
        flagged = (await session.exec(select(DuplicateCandidateRow))).all()
    assert [(f.report_id, f.similar_report_id) for f in flagged] == [
        (results[1].report_id, results[0].report_id)
    ]


async def test_concurrent_zone_look_ups_answer_as_single_ones_and_see_new_placements(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    townships = TownshipRegistry(db)

    async def place(township: str, zone: str, since: date) -> None:
        async with db.transaction() as session:
            await record_placement(
                session,
                TownshipPlaced(
                    county_id="c1",
                    zone_id=zone,
                    township_id=township,
                    township_name=township,
                    effective_from=since,
                ),
            )

    await place("t1", "z1", date(2026, 1, 1))
    await place("t1", "z2", date(2026, 3, 1))
    await place("t2", "z3", date(2026, 2, 1))
    asked = [
        ("t1", date(2026, 2, 1)),
        ("t1", date(2026, 3, 5)),
        ("t2", date(2026, 1, 5)),
        ("t2", date(2026, 2, 1)),
        ("t9", date(2026, 3, 5)),
    ]
    together = await asyncio.gather(*(townships.zone_of("c1", t, on=on) for t, on in asked))
    assert together == ["z1", "z2", None, "z3", None]
    await place("t9", "z1", date(2026, 3, 1))
    assert await townships.zone_of("c1", "t9", on=date(2026, 3, 5)) == "z1"


async def test_grouped_submissions_match_exactly_as_one_by_one(
    make_database: MakeDatabase,
) -> None:
    # Few names, one edit apart or equal, over two townships: many links and near-duplicates.
    names = ["Zhao Qian", "Zhao Qia", "Zhao Qin", "Sun Li", "Sun Lin", "Zhou Wu"]
    subs = [
        letter_submission(f"s{n}", township=f"t{n % 2}", name=names[(n * 5) % len(names)])
        for n in range(36)
    ]

    async def outcome(grouped: bool) -> tuple[list[Any], list[tuple[int, int]]]:
        db = await make_database("intake")
        registry = ReportRegistry(db, Vault(bytes(32)), BOOK)
        drafts = [registry._draft(s, fingerprint(s), actor="o") for s in subs]
        if grouped:
            # One group in a known order (concurrent calls queue in no promised order).
            written = await registry._apply_group(drafts)
            results = [r for r in written if r is not None]
            assert len(results) == len(subs)
        else:
            results = [await registry._insert(draft) for draft in drafts]
        index = {r.report_id: n for n, r in enumerate(results)}
        first_of_clue: dict[str, int] = {}
        shape = [(r.linked, first_of_clue.setdefault(r.clue_id, n)) for n, r in enumerate(results)]
        async with db.session() as session:
            flagged = (await session.exec(select(DuplicateCandidateRow))).all()
        pairs = sorted((index[f.report_id], index[f.similar_report_id]) for f in flagged)
        return shape, pairs

    alone = await outcome(grouped=False)
    assert alone[1], "the load flags near-duplicates"
    assert await outcome(grouped=True) == alone
