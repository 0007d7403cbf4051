"""Duplicates, upward jurisdiction and reporter progress on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import ReporterIdentity, Subject, Submission
from services.intake.domain.status import ReportStatus
from services.intake.store.duplicates import DuplicateDesk
from services.intake.store.progress import apply_progress
from services.intake.store.reports import Registration, ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ClueLedgerRow, ReportRow
from services.intake.store.vault import Vault
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase

BOOK = load_rule_book()
VAULT = Vault(bytes(range(32)))
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINKED_TYPE = "xiezuo.intake.report_linked.v1"
CLUE_TYPE = "xiezuo.intake.clue_registered.v1"


def _submission(key: str, **changes: object) -> Submission:
    base = Submission(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=Channel.LETTER,
        subject=Subject(
            "Li Si", "village secretary", "Hexi village committee", "t1", "", CadreLevel.VILLAGE
        ),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=ReporterIdentity("Zhao Liu", "110101199001011234", "13800000000", ""),
        campaign_id=None,
        received_at=RECEIVED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def _register(db: Database, submission: Submission) -> Registration:
    return await ReportRegistry(db, VAULT, BOOK).register(submission, actor="officer")


async def _events(db: Database, event_type: str) -> list[dict[str, object]]:
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.payload).where(OutboxMessage.event_type == event_type)
        )
        return [json.loads(payload) for payload in rows.all()]


async def test_a_repeat_in_the_window_links_and_raises_priority_outside_opens_a_clue(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    first = await _register(db, _submission("k1"))
    # Same subject written differently, another channel, 89 days later: the same matter.
    again = await _register(
        db,
        _submission(
            "k2",
            channel=Channel.ONLINE,
            subject=Subject(
                "li  si", "secretary", "HEXI village committee", "t1", "", CadreLevel.VILLAGE
            ),
            received_at=RECEIVED + timedelta(days=89),
            reporter=None,
        ),
    )
    late = await _register(db, _submission("k3", received_at=RECEIVED + timedelta(days=200)))

    assert again.linked and again.clue_id == first.clue_id
    assert again.report_id != first.report_id and len(again.receipt_code) == 16
    assert not late.linked and late.clue_id != first.clue_id
    assert [e["clue_id"] for e in await _events(db, CLUE_TYPE)] == [first.clue_id, late.clue_id]
    [linked] = await _events(db, LINKED_TYPE)
    assert (linked["report_id"], linked["clue_id"]) == (again.report_id, first.clue_id)
    assert linked["repeat_count"] == 1 and linked["linked_by"] == "fingerprint"
    async with db.session() as session:
        clue = await session.get(ClueLedgerRow, first.clue_id)
        [registered] = [e for e in await _events(db, CLUE_TYPE) if e["clue_id"] == first.clue_id]
    assert clue is not None and clue.repeat_count == 1
    assert clue.priority == linked["priority"] == int(str(registered["priority"])) + 10


async def test_a_near_duplicate_is_flagged_and_an_officer_links_it_once(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    first = await _register(db, _submission("k1"))
    other = await _register(db, _submission("k2", allegation_categories=("bribery",)))
    assert not other.linked and other.clue_id != first.clue_id
    desk = DuplicateDesk(db, BOOK)
    now = RECEIVED + timedelta(days=1)
    page = await desk.list(
        county_id="c1", zone_ids=None, pending_only=True, offset=0, limit=10, actor="o", now=now
    )
    [flag] = page.candidates
    assert (flag.report_id, flag.similar_clue_id) == (other.report_id, first.clue_id)
    assert "different allegation categories" in flag.reason
    assert (
        await desk.list(
            county_id="c1",
            zone_ids=frozenset({"z9"}),
            pending_only=True,
            offset=0,
            limit=10,
            actor="o",
            now=now,
        )
    ).candidates == []

    decided = await desk.decide(
        flag.candidate_id, link=True, reason="same fund", actor="o", now=now
    )
    assert decided.state == "linked"
    again = await desk.decide(flag.candidate_id, link=True, reason="retry", actor="o", now=now)
    assert again.state == "linked"
    [linked] = await _events(db, LINKED_TYPE)
    assert linked["superseded_clue_id"] == other.clue_id
    assert linked["linked_by"] == "officer" and linked["clue_id"] == first.clue_id
    async with db.session() as session:
        report = await session.get(ReportRow, other.report_id)
        actions = (
            await session.exec(
                select(AuditEntry.action).where(AuditEntry.record_id == other.report_id)
            )
        ).all()
    assert report is not None and report.clue_id == first.clue_id
    assert actions.count("report.duplicate_decided") == 1


async def test_a_county_division_subject_is_forwarded_upward_and_opens_no_clue(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    subject = Subject("Zhou", "bureau director", "Bureau", "t1", "", CadreLevel.COUNTY_DIVISION)
    forwarded = await _register(db, _submission("k1", subject=subject))
    assert forwarded.status == ReportStatus.FORWARDED.value and not forwarded.linked
    # No clue opens here, so none is named (a clue id would be one nobody can ever look up).
    assert forwarded.clue_id == ""
    assert await _events(db, CLUE_TYPE) == []
    [event] = await _events(db, "xiezuo.intake.report_forwarded.v1")
    assert event["decided_by"] == "system:jurisdiction" and event["within_limit"] is True
    assert event["clue_id"] == ""
    # A later report on the same subject is not linked to a clue that does not exist here.
    second = await _register(db, _submission("k2", subject=subject))
    assert not second.linked and await _events(db, LINKED_TYPE) == []


async def test_case_progress_moves_every_report_of_the_clue_forward_only(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    first = await _register(db, _submission("k1"))
    repeat = await _register(db, _submission("k2", received_at=RECEIVED + timedelta(days=1)))
    assert repeat.linked
    now = RECEIVED + timedelta(days=3)

    async def progress(status: ReportStatus) -> list[str]:
        async with db.transaction() as session:
            return await apply_progress(
                session,
                VAULT,
                county_id="c1",
                clue_id=first.clue_id,
                progress=status,
                actor="event:cases",
                now=now,
            )

    assert set(await progress(ReportStatus.IN_PROGRESS)) == {first.report_id, repeat.report_id}
    assert await progress(ReportStatus.IN_PROGRESS) == []
    assert len(await progress(ReportStatus.CONCLUDED)) == 2
    assert await progress(ReportStatus.IN_PROGRESS) == []
    async with db.session() as session:
        statuses = (
            await session.exec(
                select(ReportRow.status).where(col(ReportRow.clue_id) == first.clue_id)
            )
        ).all()
    assert statuses == ["concluded", "concluded"]
    # A report repeating a concluded matter shows what its clue has come to.
    later = await _register(db, _submission("k3", received_at=RECEIVED + timedelta(days=5)))
    assert later.linked and later.status == "concluded"


async def test_identical_reports_arriving_together_open_one_clue(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    # Separate engines, as separate replicas (or requests on separate connections) would be.
    engines = [Database(db.url, audit_key=db.audit_key) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(
                _register(engine, _submission(f"same-{index}"))
                for index, engine in enumerate(engines)
            )
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert len({result.clue_id for result in results}) == 1
    assert sorted(result.linked for result in results) == [False, True, True, True]
    assert len(await _events(db, CLUE_TYPE)) == 1
    assert len(await _events(db, LINKED_TYPE)) == 3
