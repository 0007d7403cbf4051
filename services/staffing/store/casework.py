"""Conflicts, recusals and assignments: the records around who works which case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.staffing.store.draws import OPEN_STATES
from services.staffing.store.tables import AssignmentRow, ConflictRow, RecusalRow


async def get_conflict(session: AsyncSession, conflict_id: str) -> ConflictRow | None:
    """One declared conflict."""
    return await session.get(ConflictRow, conflict_id)


async def get_recusal(session: AsyncSession, recusal_id: str) -> RecusalRow | None:
    """One recusal request."""
    return await session.get(RecusalRow, recusal_id)


async def assignment(session: AsyncSession, draw_id: str, person_id: str) -> AssignmentRow | None:
    """The assignment a draw gave a person."""
    return await session.get(AssignmentRow, f"{draw_id}:{person_id}")


async def open_team(session: AsyncSession, request_id: str) -> list[AssignmentRow]:
    """The open assignments of a request: its current team."""
    query = (
        select(AssignmentRow)
        .where(AssignmentRow.request_id == request_id)
        .where(col(AssignmentRow.state).in_(OPEN_STATES))
        .order_by(col(AssignmentRow.leader).desc(), col(AssignmentRow.assignment_id))
    )
    return list((await session.exec(query)).all())


async def declined_by(session: AsyncSession, request_id: str) -> list[str]:
    """Everyone who declined this request: a redraw must not pick them again."""
    query = select(AssignmentRow.person_id).where(
        AssignmentRow.request_id == request_id, AssignmentRow.state == "declined"
    )
    return list((await session.exec(query)).all())


def close_assignments(
    rows: Sequence[AssignmentRow], *, state: str, reason: str | None, at: datetime
) -> None:
    """Move assignments out of the open workload (declined, replaced, released)."""
    for row in rows:
        row.state = state
        row.reason = reason
        row.updated_at = at


async def open_case_assignments(session: AsyncSession, case_id: str) -> list[AssignmentRow]:
    """Every open assignment on a case, whichever request it came from."""
    query = (
        select(AssignmentRow)
        .where(AssignmentRow.case_id == case_id)
        .where(col(AssignmentRow.state).in_(OPEN_STATES))
    )
    return list((await session.exec(query)).all())


async def open_assignment_counts(
    session: AsyncSession, person_ids: Sequence[str]
) -> dict[str, int]:
    """How many open assignments each of these people holds (absent: none)."""
    if not person_ids:
        return {}
    query = (
        select(AssignmentRow.person_id, func.count())
        .where(col(AssignmentRow.person_id).in_(person_ids))
        .where(col(AssignmentRow.state).in_(OPEN_STATES))
        .group_by(col(AssignmentRow.person_id))
    )
    return dict((await session.exec(query)).all())
