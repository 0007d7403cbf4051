"""Teams, the steps that end or judge their work, and the staff counts derived from them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.staff_work import TEAM_STAGES, Team, WorkStep, work_counts
from services.assessment.store.tables import CaseTeam, CaseWorkStep, LimitBreach, TeamRequest

LEADER_MARK = "*"


def _insert(session: AsyncSession, model: type) -> object:
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


async def _insert_once(session: AsyncSession, model: type, **values: object) -> None:
    statement = _insert(session, model).values(**values)  # type: ignore[attr-defined]
    await (await session.connection()).execute(statement.on_conflict_do_nothing())


async def record_request(
    session: AsyncSession,
    *,
    county_id: str,
    request_id: str,
    case_id: str,
    stage: str,
    requested_at: datetime,
) -> None:
    """When cases asked for a team (the team's work starts then)."""
    await _insert_once(
        session,
        TeamRequest,
        county_id=county_id,
        request_id=request_id,
        case_id=case_id,
        stage=stage,
        requested_at=requested_at,
    )


async def record_team(
    session: AsyncSession,
    *,
    county_id: str,
    event_id: str,
    case_id: str,
    request_id: str,
    stage: str,
    zone_id: str,
    members: list[tuple[str, bool]],
    assigned_at: datetime,
) -> None:
    """A team drawn for a request (a redraw is another row; the latest one works)."""
    await _insert_once(
        session,
        CaseTeam,
        county_id=county_id,
        event_id=event_id,
        case_id=case_id,
        request_id=request_id,
        stage=stage,
        zone_id=zone_id,
        members=" ".join(person + (LEADER_MARK if leader else "") for person, leader in members),
        assigned_at=assigned_at,
    )


async def record_step(
    session: AsyncSession,
    *,
    county_id: str,
    case_id: str,
    event_id: str,
    kind: str,
    quarter: Quarter,
    occurred_at: datetime,
) -> None:
    """A step that ends a team's stage or judges its work."""
    await _insert_once(
        session,
        CaseWorkStep,
        county_id=county_id,
        case_id=case_id,
        event_id=event_id,
        kind=kind,
        quarter=str(quarter),
        occurred_at=occurred_at,
    )


def _members(text: str) -> tuple[tuple[str, bool], ...]:
    return tuple(
        (item.removesuffix(LEADER_MARK), item.endswith(LEADER_MARK)) for item in text.split()
    )


async def staff_counts(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str | None = None,
) -> dict[tuple[str, str, str], list[str]]:
    """(person, zone, kpi) → the steps counted for each staff member in a quarter."""
    if level is not Level.PERSON:
        return {}
    cases = select(CaseWorkStep.case_id).where(
        CaseWorkStep.county_id == county_id, CaseWorkStep.quarter == str(quarter)
    )
    steps = [
        WorkStep(row.case_id, row.kind, row.event_id, row.occurred_at, row.quarter)
        for row in (
            await session.exec(
                select(CaseWorkStep).where(
                    CaseWorkStep.county_id == county_id,
                    CaseWorkStep.quarter == str(quarter),
                )
            )
        ).all()
    ]
    if not steps:
        return {}
    requested = dict(
        (
            await session.exec(
                select(TeamRequest.request_id, TeamRequest.requested_at).where(
                    TeamRequest.county_id == county_id, col(TeamRequest.case_id).in_(cases)
                )
            )
        ).all()
    )
    teams = [
        Team(
            row.case_id,
            row.stage,
            row.request_id,
            row.zone_id,
            _members(row.members),
            # Before its request is consumed a team is dated by its draw.
            requested.get(row.request_id, row.assigned_at),
            (row.assigned_at, row.event_id),
        )
        for row in (
            await session.exec(
                select(CaseTeam).where(
                    CaseTeam.county_id == county_id, col(CaseTeam.case_id).in_(cases)
                )
            )
        ).all()
    ]
    breaches: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    query = select(LimitBreach.case_id, LimitBreach.clock, LimitBreach.due_at).where(
        LimitBreach.county_id == county_id,
        col(LimitBreach.case_id).in_(cases),
        col(LimitBreach.clock).in_(list(TEAM_STAGES)),
    )
    for case_id, clock, due_at in (await session.exec(query)).all():
        breaches[(case_id, clock)].append(due_at)
    counted = work_counts(teams, steps, breaches, str(quarter))
    if subject_id is None:
        return counted
    return {key: events for key, events in counted.items() if key[0] == subject_id}
