"""Reading and writing clues."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.clue import ClueStatus, NewClue, disposal_due
from services.cases.domain.rules import RuleSet
from services.cases.store.tables import CaseFileRow, CaseMemberRow, ClueRow
from services.runtime import audit
from services.runtime.bulk import dialect_insert
from services.runtime.db import Database


async def register_clue(
    session: AsyncSession, clue: NewClue, rules: RuleSet, *, actor: str
) -> bool:
    """Add the clue and its audit entry to the caller's transaction (idempotent by id).

    Returns False, writing nothing, when the clue is registered already.
    """
    # One statement that both checks and inserts: the consumer runs this for every clue.
    connection = await session.connection()
    inserted = await connection.execute(
        insert_ignoring_conflict(session, ClueRow, "clue_id").values(**clue_row(clue, rules))
    )
    if inserted.rowcount == 0:
        return False
    await audit_registered(session, clue, rules, actor=actor)
    return True


def clue_row(
    clue: NewClue,
    rules: RuleSet,
    *,
    categories_json: str | None = None,
    disposal_due_at: datetime | None = None,
) -> dict[str, Any]:
    """The columns of a newly registered clue (`categories_json`: its categories encoded, and
    `disposal_due_at`: `disposal_due(clue, rules)`, if known already)."""
    if categories_json is None:
        categories_json = json.dumps(list(clue.allegation_categories))
    if disposal_due_at is None:
        disposal_due_at = disposal_due(clue, rules)
    return {
        "clue_id": clue.clue_id,
        "county_id": clue.county_id,
        "zone_id": clue.zone_id,
        "township_id": clue.township_id,
        "source_report_id": clue.source_report_id,
        "channel": clue.channel,
        "allegation_categories": categories_json,
        "subject_cadre_level": clue.subject_cadre_level,
        "real_name": clue.real_name,
        "status": ClueStatus.REGISTERED.value,
        "rule_version": rules.version,
        "registered_at": clue.registered_at,
        "disposal_due_at": disposal_due_at,
        "repeat_count": 0,
    }


async def audit_registered(
    session: AsyncSession, clue: NewClue, rules: RuleSet, *, actor: str
) -> None:
    """The audit entry of a clue's registration."""
    await audit.append(
        session,
        county_id=clue.county_id,
        actor=actor,
        action="clue.registered",
        record_type="clue",
        record_id=clue.clue_id,
        detail={"zone_id": clue.zone_id, "rule_version": rules.version},
    )


async def registered_already(session: AsyncSession, clue_ids: Sequence[str]) -> set[str]:
    """Which of these clue ids are on the ledger (one look-up for a consumer's batch)."""
    if not clue_ids:
        return set()
    found = await session.exec(select(ClueRow.clue_id).where(col(ClueRow.clue_id).in_(clue_ids)))
    return set(found.all())


def insert_ignoring_conflict(session: AsyncSession, model: Any, *key: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO NOTHING for the session's dialect."""
    insert = dialect_insert(session.get_bind().dialect, model.__table__)
    return insert.on_conflict_do_nothing(index_elements=list(key))


@dataclass(frozen=True)
class ClueView:
    """A clue as read, with its case file's stage and who is recused from it."""

    row: ClueRow
    stage: str
    recused: frozenset[str]


class ClueReader:
    """Audited reads of clues."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, clue_id: str, *, actor: str) -> ClueView | None:
        """One clue; the read is recorded in the audit log."""
        async with self._db.transaction() as session:
            row = await session.get(ClueRow, clue_id)
            if row is None:
                return None
            await _audit_read(session, [row], actor=actor)
            stages = await _stages(session, [clue_id])
            recused = await session.exec(
                select(CaseMemberRow.person_id).where(
                    CaseMemberRow.case_id == clue_id, CaseMemberRow.team == "recused"
                )
            )
            return ClueView(row, stages.get(clue_id, row.status), frozenset(recused.all()))

    async def page(
        self, *, county_id: str, zone_ids: Sequence[str] | None, after: str, limit: int, actor: str
    ) -> list[ClueView]:
        """Clues of a county (optionally some zones) ordered by id, after a cursor."""
        async with self._db.transaction() as session:
            query = select(ClueRow).where(ClueRow.county_id == county_id)
            if zone_ids is not None:
                query = query.where(col(ClueRow.zone_id).in_(list(zone_ids)))
            if after:
                query = query.where(col(ClueRow.clue_id) > after)
            rows = list(
                (await session.exec(query.order_by(col(ClueRow.clue_id)).limit(limit))).all()
            )
            await _audit_read(session, rows, actor=actor)
            stages = await _stages(session, [row.clue_id for row in rows])
            return [ClueView(row, stages.get(row.clue_id, row.status), frozenset()) for row in rows]


async def _stages(session: AsyncSession, clue_ids: Sequence[str]) -> dict[str, str]:
    """The workflow stage of each clue's case file (the file carries the clue's id)."""
    if not clue_ids:
        return {}
    rows = await session.exec(
        select(CaseFileRow.case_id, CaseFileRow.stage).where(
            col(CaseFileRow.case_id).in_(list(clue_ids))
        )
    )
    return {case_id: stage for case_id, stage in rows.all()}


async def _audit_read(session: AsyncSession, rows: Sequence[ClueRow], *, actor: str) -> None:
    for row in rows:
        await audit.append(
            session,
            county_id=row.county_id,
            actor=actor,
            action="clue.read",
            record_type="clue",
            record_id=row.clue_id,
        )
