"""ClueRegistered on SQLite and PostgreSQL: one clue, one file, one deadline, one audit entry,
however often the clue arrives, and nothing kept of a registration its transaction undid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, func, select

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.store import codec
from services.cases.store.tables import CaseFileRow, ClueRow, DeadlineRow
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.runtime import audit
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from tests.conftest import MakeDatabase

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _clue(clue_id: str, *, zone: str = "z1") -> ClueRegistered:
    return ClueRegistered(
        county_id="c1",
        zone_id=zone,
        clue_id=clue_id,
        report_id=f"r-{clue_id}",
        township_id="t1",
        channel="letter",
        allegation_categories=["embezzlement"],
        subject=ReportedSubject(
            name="Li", post="secretary", unit="Hexi", township_id="t1", cadre_level="village"
        ),
        real_name=False,
        received_at=AT,
        registered_at=AT,
    )


def _envelope(event: ClueRegistered) -> Envelope:
    # A fresh event id each time: the handler itself must be idempotent by clue, not only
    # the inbox by event id (intake may publish the same clue twice).
    return Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/intake",
        time=AT,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=b"{}",
    )


async def _count(db: Database, table: Any, *where: Any) -> int:
    async with db.session() as session:
        return int(
            (await session.exec(select(func.count()).select_from(table).where(*where))).one()
        )


async def test_a_clue_delivered_twice_is_registered_once(make_database: MakeDatabase) -> None:
    db = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])
    first = _clue("clue-1")
    async with db.transaction() as session:
        await handler(session, first, _envelope(first))
    # The same clue again, with other details: the first registration stands.
    again = _clue("clue-1", zone="z2")
    async with db.transaction() as session:
        await handler(session, again, _envelope(again))

    async with db.session() as session:
        clue = (await session.exec(select(ClueRow))).one()
        file = (await session.exec(select(CaseFileRow))).one()
        deadline = (await session.exec(select(DeadlineRow))).one()
    assert (clue.clue_id, clue.zone_id, clue.status, clue.repeat_count) == (
        "clue-1",
        "z1",
        "registered",
        0,
    )
    assert clue.priority is None
    assert (file.case_id, file.zone_id, file.stage, file.revision) == (
        "clue-1",
        "z1",
        "registered",
        0,
    )
    assert codec.decode(file.state).clock == "disposal"
    assert (deadline.deadline_id, deadline.kind, deadline.status) == (
        "clue-1:disposal:1",
        "disposal",
        "open",
    )
    assert deadline.extensions == 0 and deadline.supersedes is None and deadline.ended_at is None
    assert await _count(db, AuditEntry, col(AuditEntry.action) == "clue.registered") == 1


async def test_a_registration_rolled_back_with_its_savepoint_leaves_nothing(
    make_database: MakeDatabase,
) -> None:
    """Inside a batch transaction a failed record's savepoint undoes its clue, and only it."""
    db = await make_database("cases")
    handler = ClueRegisteredHandler([DEFAULT_RULES])
    kept, undone = _clue("clue-kept"), _clue("clue-undone")
    async with db.transaction() as session:
        async with session.begin_nested():
            await handler(session, kept, _envelope(kept))
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await handler(session, undone, _envelope(undone))
                raise RuntimeError("a later step of this record failed")
        # The undone clue arrives again later in the same batch (its retry): registered now.
        async with session.begin_nested():
            await handler(session, undone, _envelope(undone))

    for table, key in ((ClueRow, ClueRow.clue_id), (CaseFileRow, CaseFileRow.case_id)):
        async with db.session() as session:
            ids = sorted((await session.exec(select(key))).all())
        assert ids == ["clue-kept", "clue-undone"], table
    assert await _count(db, DeadlineRow) == 2
    assert await _count(db, AuditEntry, col(AuditEntry.action) == "clue.registered") == 2
    # The undone entry left no gap or fork in the county's audit chain.
    assert db.audit_key is not None
    async with db.session() as session:
        verified = await audit.verify(session, db.audit_key)
    assert verified.ok, verified.problems
