"""The deadline engine on SQLite and PostgreSQL: each notice once, across scanners and restarts."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlmodel import col, select

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.store.deadline_scan import DeadlineScanner
from services.cases.store.deadlines import extend_clock, open_deadline, stop_clock
from services.cases.store.tables import ClueRow, DeadlineNoticeRow, DeadlineRow
from services.runtime.db import Database, as_utc
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase
from tests.integration.helpers import register_case_clue

REGISTERED = datetime(2026, 3, 2, 9, tzinfo=UTC)
# Disposal: 1 month (due 2026-04-02), warned 5 days before.
WARNING = datetime(2026, 3, 30, 9, tzinfo=UTC)
BREACH = datetime(2026, 4, 3, 9, tzinfo=UTC)
CLUES = 12


async def _register(db: Database, clue_id: str) -> None:
    await register_case_clue(db, clue_id, at=REGISTERED)


async def _notices(db: Database) -> dict[str, list[str]]:
    """Deadline ids per notice event type, as the outbox holds them."""
    async with db.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.event_type).in_(
                        [
                            "xiezuo.cases.deadline_approaching.v1",
                            "xiezuo.cases.deadline_breached.v1",
                        ]
                    )
                )
            )
        ).all()
    found: dict[str, list[str]] = {"approaching": [], "breached": []}
    for row in rows:
        kind = "breached" if row.event_type.endswith("breached.v1") else "approaching"
        found[kind].append(json.loads(row.payload)["deadline_id"])
    return {kind: sorted(ids) for kind, ids in found.items()}


async def test_two_concurrent_scanners_fire_each_notice_once(make_database: MakeDatabase) -> None:
    db = await make_database("cases")
    for index in range(CLUES):
        await _register(db, f"clue-{index:02d}")
    # Two scanners on separate engines (as two replicas would run them), small batches.
    first, second = (
        Database(db.url, audit_key=db.audit_key),
        Database(db.url, audit_key=db.audit_key),
    )
    try:
        scanners = [DeadlineScanner(first, batch_size=5), DeadlineScanner(second, batch_size=5)]
        expected = sorted(f"clue-{index:02d}:disposal:1" for index in range(CLUES))
        before = await asyncio.gather(*(s.scan(now=REGISTERED) for s in scanners))
        assert all(not r.approaching and not r.breached for r in before)
        warned = await asyncio.gather(*(s.scan(now=WARNING) for s in scanners))
        assert sorted(warned[0].approaching + warned[1].approaching) == expected
        breached = await asyncio.gather(*(s.scan(now=BREACH) for s in scanners))
        assert sorted(breached[0].breached + breached[1].breached) == expected
        assert (await _notices(db)) == {"approaching": expected, "breached": expected}
    finally:
        await first.dispose()
        await second.dispose()
    # A restarted service (a new engine, nothing in memory) fires nothing again.
    restarted = Database(db.url, audit_key=db.audit_key)
    try:
        again = await DeadlineScanner(restarted).scan(now=BREACH + timedelta(days=30))
    finally:
        await restarted.dispose()
    assert (again.approaching, again.breached) == ([], [])
    assert (await _notices(db))["breached"] == expected
    async with db.session() as session:
        statuses = set((await session.exec(select(DeadlineRow.status))).all())
        notices = len((await session.exec(select(DeadlineNoticeRow))).all())
    assert statuses == {"breached"} and notices == 2 * CLUES


async def test_a_deadline_found_past_due_breaches_without_a_late_warning(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-late")
    result = await DeadlineScanner(db).scan(now=BREACH)
    assert (result.approaching, result.breached) == ([], ["clue-late:disposal:1"])
    assert (await DeadlineScanner(db).scan(now=BREACH)).breached == []


async def test_an_extension_after_a_breach_keeps_the_breach_and_runs_a_new_deadline(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-x")
    scanner = DeadlineScanner(db)
    await scanner.scan(now=BREACH)
    async with db.transaction() as session:
        await extend_clock(session, "clue-x", "disposal", 30, DEFAULT_RULES, now=BREACH)
    async with db.session() as session:
        rows = (
            await session.exec(select(DeadlineRow).order_by(col(DeadlineRow.deadline_id)))
        ).all()
    old, new = rows
    assert (old.status, old.ended_at is not None) == ("breached", True)
    assert (new.status, new.supersedes, new.extensions) == ("open", old.deadline_id, 1)
    assert new.due_at.replace(tzinfo=UTC) == datetime(2026, 5, 2, 9, tzinfo=UTC)
    # The new deadline warns and breaches on its own date, once each.
    assert (await scanner.scan(now=BREACH + timedelta(days=1))).breached == []
    warned = await scanner.scan(now=datetime(2026, 4, 28, 9, tzinfo=UTC))
    assert warned.approaching == ["clue-x:disposal:2"]
    # Met in time: it ends met and nothing more fires for it.
    async with db.transaction() as session:
        await stop_clock(session, "clue-x", "disposal", now=datetime(2026, 4, 29, tzinfo=UTC))
    late = await scanner.scan(now=datetime(2026, 6, 1, tzinfo=UTC))
    assert (late.approaching, late.breached) == ([], [])
    async with db.session() as session:
        final = (
            await session.exec(select(DeadlineRow).order_by(col(DeadlineRow.deadline_id)))
        ).all()
    assert [d.status for d in final] == ["breached", "met"]


async def test_a_working_day_limit_warns_and_breaches_on_the_countys_clock(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-inq")
    # A letter of inquiry sent Monday 2 March 2026 at 07:30 Beijing time (Sunday 23:30 UTC).
    async with db.transaction() as session:
        await open_deadline(
            session,
            record_id="clue-inq",
            county_id="c1",
            zone_id="z1",
            kind="inquiry_reply",
            rules=DEFAULT_RULES,
            started_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
        )
    # 15 working days from Monday: Monday 23 March 07:30 Beijing time, warned 3 days before.
    # (From the UTC Sunday: due Saturday 21 March, warned Wednesday 18 March, Beijing time.)
    due = datetime(2026, 3, 22, 23, 30, tzinfo=UTC)
    warn = datetime(2026, 3, 19, 23, 30, tzinfo=UTC)
    deadline_id = "clue-inq:inquiry_reply:1"
    async with db.session() as session:
        row = await session.get(DeadlineRow, deadline_id)
    assert row is not None and (as_utc(row.due_at), as_utc(row.warn_at)) == (due, warn)
    scanner = DeadlineScanner(db)
    assert (await scanner.scan(now=warn - timedelta(seconds=1))).approaching == []
    assert (await scanner.scan(now=warn)).approaching == [deadline_id]
    # Saturday 21 March in Beijing is not yet the end of the limit.
    assert (await scanner.scan(now=datetime(2026, 3, 21, 12, tzinfo=UTC))).breached == []
    assert (await scanner.scan(now=due - timedelta(seconds=1))).breached == []
    assert (await scanner.scan(now=due)).breached == [deadline_id]


async def test_a_clue_registered_after_midnight_in_beijing_counts_its_month_from_that_day(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    # Tuesday 31 March 2026, 01:00 Beijing time: 30 March in UTC.
    await register_case_clue(db, "clue-0331", at=datetime(2026, 3, 30, 17, tzinfo=UTC))
    # One month on the county's dates: 30 April 01:00 Beijing time (from the UTC date, 30 April
    # 17:00 UTC, which is 1 May there). The clue and its deadline row agree.
    due = datetime(2026, 4, 29, 17, tzinfo=UTC)
    async with db.session() as session:
        clue = await session.get(ClueRow, "clue-0331")
        deadline = await session.get(DeadlineRow, "clue-0331:disposal:1")
    assert clue is not None and deadline is not None
    assert as_utc(clue.disposal_due_at) == as_utc(deadline.due_at) == due
    assert as_utc(deadline.warn_at) == datetime(2026, 4, 24, 17, tzinfo=UTC)


async def test_a_rule_version_takes_effect_at_the_countys_midnight(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    versions = [
        DEFAULT_RULES,
        replace(DEFAULT_RULES, version="v2027", effective_from=date(2027, 1, 1)),
    ]
    # 1 January 2027, 00:30 Beijing time: still 31 December in UTC.
    await register_case_clue(
        db, "clue-new-year", at=datetime(2026, 12, 31, 16, 30, tzinfo=UTC), rule_versions=versions
    )
    await register_case_clue(
        db, "clue-old-year", at=datetime(2026, 12, 31, 15, 30, tzinfo=UTC), rule_versions=versions
    )
    async with db.session() as session:
        new = await session.get(ClueRow, "clue-new-year")
        old = await session.get(ClueRow, "clue-old-year")
    assert new is not None and old is not None
    assert (new.rule_version, old.rule_version) == ("v2027", DEFAULT_RULES.version)
