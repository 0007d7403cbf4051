"""Duplicate matching through match keys on real SQLite and PostgreSQL: bounded reads, backfill."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlmodel import select

from services.intake.domain.duplicates import DuplicateProfile, DuplicateRules, normalise
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission
from services.intake.store import duplicates
from services.intake.store.reports import Registration, ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReportMatchKeyRow
from services.intake.store.vault import Vault
from services.runtime.db import Database, as_utc
from services.runtime.migrate import alembic_config, upgrade
from tests.conftest import MakeDatabase

BOOK = load_rule_book()
RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _submission(key: str, name: str, **changes: object) -> Submission:
    base = Submission(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=Channel.LETTER,
        subject=Subject(name, "village secretary", "Hexi committee", "t1", "", CadreLevel.VILLAGE),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=None,
        campaign_id=None,
        received_at=RECEIVED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def _register(db: Database, submission: Submission) -> Registration:
    return await ReportRegistry(db, Vault(bytes(32)), BOOK).register(submission, actor="officer")


async def _keys(db: Database) -> set[tuple[str, str, datetime]]:
    async with db.session() as session:
        rows = (await session.exec(select(ReportMatchKeyRow))).all()
    return {(row.report_id, row.match_key, as_utc(row.received_at)) for row in rows}


async def test_matching_reads_only_the_reports_that_share_a_key(
    make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await make_database("intake")
    for index in range(40):
        # Forty other subjects in the same township and window: none is a near-duplicate.
        await _register(db, _submission(f"other-{index}", f"Person {index:02d} Zhang"))
    near = await _register(db, _submission("near", "Li Si"))
    profiles_read: list[str] = []
    original = duplicates.profile_of_row

    def counting(row: object) -> DuplicateProfile:
        profiles_read.append(row.report_id)  # type: ignore[attr-defined]
        return original(row)  # type: ignore[arg-type]

    monkeypatch.setattr(duplicates, "profile_of_row", counting)
    profile = DuplicateProfile(
        "c1",
        normalise("Li Sy"),
        normalise("Hexi committee"),
        "t1",
        frozenset({"bribery"}),
        RECEIVED,
    )
    async with db.session() as session:
        outcome = await duplicates.match_report(session, profile, DuplicateRules(90, 1))
    assert isinstance(outcome, list) and [s.report_id for s in outcome] == [near.report_id]
    # Not the township's forty other reports: the cost does not grow with the history.
    assert profiles_read == [near.report_id]


async def test_the_migration_backfills_the_keys_of_reports_stored_before_it(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    first = await _register(db, _submission("k1", "Li Si"))
    await _register(db, _submission("k2", "Wang Wu", received_at=RECEIVED - timedelta(days=3)))
    upward = _submission(
        "k3",
        "Zhao Da",
        subject=Subject(
            "Zhao Da", "director", "County bureau", "t1", "", CadreLevel.COUNTY_DIVISION
        ),
    )
    await _register(db, upward)
    written = await _keys(db)
    assert written and len({report_id for report_id, _, _ in written}) == 2

    await asyncio.to_thread(command.downgrade, alembic_config("intake", db.url), "intake_0006")
    await asyncio.to_thread(upgrade, "intake", db.url)
    await db.dispose()
    assert await _keys(db) == written

    # A near-duplicate of a report stored before the migration is still flagged.
    later = await _register(db, _submission("k4", "Li Sy"))
    async with db.session() as session:
        profile = DuplicateProfile(
            "c1", normalise("Li Si"), normalise("Hexi committee"), "t1", frozenset(), RECEIVED
        )
        outcome = await duplicates.match_report(session, profile, DuplicateRules(90, 1))
    assert isinstance(outcome, list)
    assert {s.report_id for s in outcome} == {first.report_id, later.report_id}
