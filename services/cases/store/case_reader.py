"""Audited reads of case files: one with its history, or a filtered page of many."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, case, exists, false, func, literal, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.casefile import APPEAL_STAGES, HEARING_STAGES, CaseFile
from services.cases.store import codec
from services.cases.store.links import links_of
from services.cases.store.tables import (
    CaseFileRow,
    CaseJointTownshipRow,
    CaseMemberRow,
    CaseStepRow,
    ClueLinkRow,
    DeadlineRow,
)
from services.runtime import audit
from services.runtime.db import Database, as_utc

Authorize = Callable[[CaseFileRow, CaseFile], None]
# A test of a decoded file that SQL cannot make (e.g. "awaits an approval from the caller").
Keep = Callable[[CaseFileRow, CaseFile], bool]
# Rows read per round while a page is filled through a `Keep` test.
SCAN_BATCH = 200


@dataclass(frozen=True)
class CaseFilter:
    """What a list call asks for, within what the caller may see."""

    county_id: str
    # Visibility: cases of these zones (None: all zones), or where `person_id` is on the
    # current team; never a case `person_id` is recused from.
    led_zones: list[str] | None
    person_id: str
    zone_id: str = ""
    township_id: str = ""
    stage: str = ""
    overdue_only: bool = False
    # Deadlines in their warning period count too (危险: the ones a chief must chase now).
    at_risk_only: bool = False
    category: str = ""
    assignee: str = ""
    # Only files in one of these stages (None: any): narrows the rows a `Keep` test reads.
    stages: frozenset[str] | None = None


@dataclass(frozen=True)
class StageTally:
    """How many visible files stand in one stage, filed or not."""

    stage: str
    filed: bool
    count: int


@dataclass(frozen=True)
class CaseView:
    """A case file as read: its row, decoded state and whether a deadline is past due."""

    row: CaseFileRow
    file: CaseFile
    overdue: bool


@dataclass(frozen=True)
class CaseRecord:
    """A case file with every deadline and every step on the record."""

    view: CaseView
    deadlines: list[DeadlineRow]
    history: list[CaseStepRow]
    # Repeated reports, duplicates and related clues naming this file.
    links: list[ClueLinkRow] = field(default_factory=list)


class CaseReader:
    """Reads of case files, each recorded in the audit log in the same transaction."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(
        self, case_id: str, *, actor: str, authorize: Authorize, now: datetime | None = None
    ) -> CaseRecord | None:
        """One case file with its full history, if `authorize` lets the caller see it."""
        moment = now or datetime.now(UTC)
        async with self._db.transaction() as session:
            row = await session.get(CaseFileRow, case_id)
            if row is None:
                return None
            file = codec.decode(row.state)
            authorize(row, file)
            deadlines = list(
                (
                    await session.exec(
                        select(DeadlineRow)
                        .where(DeadlineRow.case_id == case_id)
                        .order_by(col(DeadlineRow.started_at), col(DeadlineRow.deadline_id))
                    )
                ).all()
            )
            history = list(
                (
                    await session.exec(
                        select(CaseStepRow)
                        .where(CaseStepRow.case_id == case_id)
                        .order_by(col(CaseStepRow.id))
                    )
                ).all()
            )
            await _audit_reads(session, [row], actor=actor)
            overdue = any(
                d.ended_at is None and (as_utc(d.due_at) <= moment or d.status == "breached")
                for d in deadlines
            )
            links = await links_of(session, case_id)
            return CaseRecord(CaseView(row, file, overdue), deadlines, history, links)

    async def page(
        self,
        query: CaseFilter,
        *,
        after: str,
        limit: int,
        actor: str,
        now: datetime | None = None,
        keep: Keep | None = None,
    ) -> list[CaseView]:
        """Visible case files matching the filter (and `keep`), in case-id order after a cursor.

        Only the files returned are audited as read: a file `keep` turns down is not shown.
        """
        moment = now or datetime.now(UTC)
        async with self._db.transaction() as session:
            kept: list[tuple[CaseFileRow, CaseFile]] = []
            cursor = after
            batch = limit if keep is None else max(limit, SCAN_BATCH)
            while len(kept) < limit:
                statement = (
                    select(CaseFileRow)
                    .where(*_conditions(query, moment))
                    .where(col(CaseFileRow.case_id) > cursor)
                    .order_by(col(CaseFileRow.case_id))
                    .limit(batch)
                )
                rows = list((await session.exec(statement)).all())
                for row in rows:
                    file = codec.decode(row.state)
                    if keep is None or keep(row, file):
                        kept.append((row, file))
                        if len(kept) == limit:
                            break
                if keep is None or len(rows) < batch:
                    break
                cursor = rows[-1].case_id
            late = await _overdue_ids(session, [row.case_id for row, _ in kept], moment)
            await _audit_reads(session, [row for row, _ in kept], actor=actor)
            return [CaseView(row, file, row.case_id in late) for row, file in kept]

    async def count_by_stage(
        self, query: CaseFilter, *, actor: str, now: datetime | None = None
    ) -> list[StageTally]:
        """How many visible files match the filter in each stage, filed or not, by stage name.

        One audit entry records the call: who counted, the filter and the counts it was given
        (no file's content is read, so no file is audited as read).
        """
        moment = now or datetime.now(UTC)
        filed = col(CaseFileRow.state).contains(codec.FILED_MARK, autoescape=True)
        matching = (
            select(col(CaseFileRow.stage).label("stage"), filed.label("filed"))
            .where(*_conditions(query, moment))
            .subquery()
        )
        statement = (
            select(matching.c.stage, matching.c.filed, func.count())
            .group_by(matching.c.stage, matching.c.filed)
            .order_by(matching.c.stage, matching.c.filed)
        )
        async with self._db.transaction() as session:
            found = (await session.exec(statement)).all()
            tallies = [StageTally(stage, bool(is_filed), int(n)) for stage, is_filed, n in found]
            await audit.append(
                session,
                county_id=query.county_id,
                actor=actor,
                action="case.counted",
                record_type="county",
                record_id=query.county_id,
                detail={
                    "filter": _filter_detail(query),
                    "counts": {f"{t.stage}{'/filed' if t.filed else ''}": t.count for t in tallies},
                },
            )
            return tallies


def _filter_detail(query: CaseFilter) -> dict[str, object]:
    """The filters a count was asked with (the ones set), for its audit entry."""
    asked: dict[str, object] = {
        "zone_id": query.zone_id,
        "township_id": query.township_id,
        "category": query.category,
        "assignee": query.assignee,
        "overdue_only": query.overdue_only,
        "at_risk_only": query.at_risk_only,
    }
    return {name: value for name, value in asked.items() if value}


def _current_team() -> ColumnElement[str]:
    """The team kind working a file in its stage, in SQL (mirrors CaseFile.current_team)."""
    return case(
        (col(CaseFileRow.stage).in_(sorted(HEARING_STAGES)), literal("hearing")),
        (col(CaseFileRow.stage).in_(sorted(APPEAL_STAGES)), literal("review")),
        else_=literal("working"),
    )


def _member(person_id: str, *, current: bool) -> ColumnElement[bool]:
    team = (
        col(CaseMemberRow.team) == _current_team()
        if current
        else col(CaseMemberRow.team) != "recused"
    )
    return exists().where(
        col(CaseMemberRow.case_id) == CaseFileRow.case_id,
        col(CaseMemberRow.person_id) == person_id,
        team,
    )


def _past_due(moment: datetime) -> ColumnElement[bool]:
    """A running deadline past its due moment (or already found breached by the scanner)."""
    return and_(
        col(DeadlineRow.ended_at).is_(None),
        or_(col(DeadlineRow.due_at) <= moment, col(DeadlineRow.status) == "breached"),
    )


def _overdue_condition(moment: datetime) -> ColumnElement[bool]:
    return exists().where(col(DeadlineRow.case_id) == CaseFileRow.case_id, _past_due(moment))


def _at_risk_condition(moment: datetime) -> ColumnElement[bool]:
    return exists().where(
        col(DeadlineRow.case_id) == CaseFileRow.case_id,
        col(DeadlineRow.ended_at).is_(None),
        or_(col(DeadlineRow.warn_at) <= moment, _past_due(moment)),
    )


def _conditions(query: CaseFilter, moment: datetime) -> list[ColumnElement[bool]]:
    visible_zone: ColumnElement[bool] = (
        literal(True)
        if query.led_zones is None
        else (col(CaseFileRow.zone_id).in_(query.led_zones) if query.led_zones else false())
    )
    recused = exists().where(
        col(CaseMemberRow.case_id) == CaseFileRow.case_id,
        col(CaseMemberRow.person_id) == query.person_id,
        col(CaseMemberRow.team) == "recused",
    )
    conditions: list[ColumnElement[bool]] = [
        col(CaseFileRow.county_id) == query.county_id,
        or_(visible_zone, _member(query.person_id, current=True)),
        ~recused,
    ]
    if query.zone_id:
        conditions.append(col(CaseFileRow.zone_id) == query.zone_id)
    if query.township_id:
        # The subject's township, or any further township of a joint case.
        joint = exists().where(
            col(CaseJointTownshipRow.case_id) == CaseFileRow.case_id,
            col(CaseJointTownshipRow.township_id) == query.township_id,
        )
        conditions.append(or_(col(CaseFileRow.township_id) == query.township_id, joint))
    if query.stage:
        conditions.append(col(CaseFileRow.stage) == query.stage)
    if query.stages is not None:
        conditions.append(col(CaseFileRow.stage).in_(sorted(query.stages)))
    if query.category:
        # categories is a sorted JSON list of strings: match the quoted element exactly.
        needle = json.dumps(query.category, ensure_ascii=False)
        conditions.append(col(CaseFileRow.categories).contains(needle, autoescape=True))
    if query.assignee:
        conditions.append(_member(query.assignee, current=False))
    if query.overdue_only:
        conditions.append(_overdue_condition(moment))
    if query.at_risk_only:
        conditions.append(_at_risk_condition(moment))
    return [and_(*conditions)]


async def _overdue_ids(
    session: AsyncSession, case_ids: Sequence[str], moment: datetime
) -> set[str]:
    if not case_ids:
        return set()
    rows = await session.exec(
        select(DeadlineRow.case_id).where(
            col(DeadlineRow.case_id).in_(list(case_ids)), _past_due(moment)
        )
    )
    return set(rows.all())


async def _audit_reads(session: AsyncSession, rows: Sequence[CaseFileRow], *, actor: str) -> None:
    for row in rows:
        await audit.append(
            session,
            county_id=row.county_id,
            actor=actor,
            action="case.read",
            record_type="case",
            record_id=row.case_id,
        )
