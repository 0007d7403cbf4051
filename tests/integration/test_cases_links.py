"""ReportLinked on SQLite and PostgreSQL: link, priority, duplicate closed, redelivery safe."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import func, select

from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.report_linked import ReportLinkedHandler
from services.cases.store import codec
from services.cases.store.tables import (
    CaseFileRow,
    CaseStepRow,
    ClueLinkRow,
    ClueRow,
    DeadlineRow,
)
from services.contracts.intake import ReportLinked
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase
from tests.integration.helpers import register_case_clue

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _envelope() -> Envelope:
    # A fresh envelope id each time: the handler itself must be safe, not only the inbox.
    return Envelope(
        id=str(uuid.uuid4()),
        type="t",
        source="xiezuo/intake",
        time=NOW,
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )


async def _register(db: Database, clue_id: str) -> None:
    await register_case_clue(db, clue_id, at=NOW)


def _linked(report_id: str, *, priority: int, superseded: str | None = None) -> ReportLinked:
    return ReportLinked(
        county_id="c1",
        zone_id="z1",
        report_id=report_id,
        clue_id="clue-1",
        township_id="t1",
        channel="letter",
        allegation_categories=["embezzlement"],
        real_name=False,
        received_at=NOW,
        linked_at=NOW,
        repeat_count=1,
        priority=priority,
        linked_by="officer" if superseded else "fingerprint",
        superseded_clue_id=superseded,
        rules_version="intake-2026.1",
    )


async def _deliver(db: Database, event: ReportLinked) -> None:
    handler = ReportLinkedHandler({DEFAULT_RULES.version: DEFAULT_RULES}, lock=not db.is_sqlite)
    async with db.transaction() as session:
        await handler(session, event, _envelope())


async def _count(db: Database, table: type, *where: Any) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(table).where(*where)
        return int((await session.exec(query)).one())


async def test_a_repeated_report_is_linked_once_and_raises_the_priority(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("cases")
    await _register(db, "clue-1")
    for _ in range(2):
        await _deliver(db, _linked("r-9", priority=75))
    # An older event with a lower score never lowers it.
    await _deliver(db, _linked("r-8", priority=10))
    async with db.session() as session:
        clue = await session.get(ClueRow, "clue-1")
        assert clue is not None and (clue.priority, clue.repeat_count) == (75, 1)
        links = (await session.exec(select(ClueLinkRow).order_by(ClueLinkRow.report_id))).all()
        assert [(link.kind, link.report_id) for link in links] == [
            ("report", "r-8"),
            ("report", "r-9"),
        ]
    steps = await _count(db, CaseStepRow, CaseStepRow.action == "link_report")
    audits = await _count(db, AuditEntry, AuditEntry.action == "case.link_report")
    assert (steps, audits) == (2, 2)


async def test_a_superseded_clue_is_closed_as_a_duplicate_once(make_database: MakeDatabase) -> None:
    db = await make_database("cases")
    await _register(db, "clue-1")
    await _register(db, "clue-2")
    for _ in range(2):
        await _deliver(db, _linked("r-clue-2", priority=60, superseded="clue-2"))
    async with db.session() as session:
        clue = await session.get(ClueRow, "clue-2")
        row = await session.get(CaseFileRow, "clue-2")
        assert clue is not None and row is not None
        assert clue.status == "linked_duplicate" and row.stage == "closed"
        file = codec.decode(row.state)
        assert (file.duplicate_of, file.clock) == ("clue-1", "")
        deadlines = (
            await session.exec(select(DeadlineRow).where(DeadlineRow.case_id == "clue-2"))
        ).all()
        assert [(d.kind, d.status, d.ended_at is not None) for d in deadlines] == [
            ("disposal", "met_by_link", True)
        ]
        # The surviving clue's own disposal deadline runs on.
        survivor = (
            await session.exec(select(DeadlineRow).where(DeadlineRow.case_id == "clue-1"))
        ).all()
        assert [(d.status, d.ended_at) for d in survivor] == [("open", None)]
        closed = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.event_type == "xiezuo.cases.case_closed.v1"
                )
            )
        ).all()
    assert [json.loads(m.payload)["action"] for m in closed] == ["link_duplicate"]
    assert await _count(db, ClueLinkRow) == 1
    assert await _count(db, AuditEntry, AuditEntry.action == "case.link_duplicate") == 1
    # A second officer link to an already-closed duplicate records the link, changes nothing.
    await _deliver(db, _linked("r-other", priority=60, superseded="clue-2"))
    assert await _count(db, CaseStepRow, CaseStepRow.case_id == "clue-2") == 2
    assert await _count(db, DeadlineRow, DeadlineRow.status == "met_by_link") == 1
