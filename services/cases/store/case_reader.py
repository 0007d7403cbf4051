"""Audited reads of case files: one with its history, or a filtered page of many."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, case, exists, false, literal, or_
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
    ) -> list[CaseView]:
        """Visible case files matching the filter, in case-id order after a cursor."""
        moment = now or datetime.now(UTC)
        async with self._db.transaction() as session:
            statement = (
                select(CaseFileRow)
                .where(*_conditions(query, moment))
                .where(col(CaseFileRow.case_id) > after)
                .order_by(col(CaseFileRow.case_id))
                .limit(limit)
            )
            rows = list((await session.exec(statement)).all())
            late = await _overdue_ids(session, [row.case_id for row in rows], moment)
            await _audit_reads(session, rows, actor=actor)
            return [CaseView(row, codec.decode(row.state), row.case_id in late) for row in rows]


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
