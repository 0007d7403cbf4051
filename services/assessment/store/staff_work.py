"""Teams, the steps that end or judge their work, and the staff counts derived from them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.facts import NOT_A_ZONE
from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.quarter import Quarter
from services.assessment.domain.staff_work import TEAM_STAGES, Team, WorkStep, work_counts
from services.assessment.store.tables import CaseTeam, CaseWorkStep, LimitBreach, TeamRequest

LEADER_MARK = "*"
TOWNSHIP_MARK = "@"


def request_row(
    *,
    county_id: str,
    request_id: str,
    case_id: str,
    stage: str,
    requested_at: datetime,
    quarter: Quarter,
) -> dict[str, Any]:
    """The team_request row of a request (inserted once: a redelivery changes nothing)."""
    return {
        "county_id": county_id,
        "request_id": request_id,
        "case_id": case_id,
        "stage": stage,
        "requested_at": requested_at,
        "quarter": str(quarter),
    }


def team_row(
    *,
    county_id: str,
    event_id: str,
    case_id: str,
    request_id: str,
    stage: str,
    zone_id: str,
    members: list[Member],
    assigned_at: datetime,
    quarter: Quarter,
) -> dict[str, Any]:
    """The case_team row of a draw."""
    return {
        "county_id": county_id,
        "event_id": event_id,
        "case_id": case_id,
        "request_id": request_id,
        "stage": stage,
        "zone_id": zone_id,
        "members": " ".join(
            f"{m.person_id}{TOWNSHIP_MARK}{m.township_id}" + (LEADER_MARK if m.leader else "")
            for m in members
        ),
        "assigned_at": assigned_at,
        "quarter": str(quarter),
    }


def step_row(
    *,
    county_id: str,
    case_id: str,
    event_id: str,
    kind: str,
    quarter: Quarter,
    occurred_at: datetime,
) -> dict[str, Any]:
    """The case_work_step row of a step under one of its kinds."""
    return {
        "county_id": county_id,
        "case_id": case_id,
        "event_id": event_id,
        "kind": kind,
        "quarter": str(quarter),
        "occurred_at": occurred_at,
    }


@dataclass(frozen=True)
class Member:
    """One person on a drawn team, with their home township."""

    person_id: str
    township_id: str
    leader: bool = False


def _members(text: str) -> tuple[Member, ...]:
    found = []
    for item in text.split():
        person, _, township = item.removesuffix(LEADER_MARK).partition(TOWNSHIP_MARK)
        found.append(Member(person, township, item.endswith(LEADER_MARK)))
    return tuple(found)


async def team_counts(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str | None = None,
) -> dict[tuple[str, str, str], list[str]]:
    """(subject, zone, kpi) → draws counted: teams assigned (zone) and postings (township,
    person), in the quarter of the team's request — a back-entered step's own date, not the
    day the draw ran. A draw whose request was not consumed yet counts in its own quarter."""
    requested = select(TeamRequest.request_id).where(
        TeamRequest.county_id == county_id, TeamRequest.quarter == str(quarter)
    )
    # Per draw a primary-key probe, not the county's whole history of requests.
    known = (
        select(TeamRequest.request_id)
        .where(
            TeamRequest.county_id == CaseTeam.county_id,
            TeamRequest.request_id == CaseTeam.request_id,
        )
        .exists()
    )
    rows = list(
        (
            await session.exec(
                select(CaseTeam).where(
                    CaseTeam.county_id == county_id, col(CaseTeam.request_id).in_(requested)
                )
            )
        ).all()
    )
    own_quarter = (
        await session.exec(
            select(CaseTeam).where(
                CaseTeam.county_id == county_id,
                CaseTeam.quarter == str(quarter),
                ~known,
            )
        )
    ).all()
    latest: dict[str, CaseTeam] = {}
    for row in [*rows, *own_quarter]:
        held = latest.get(row.request_id)
        # The latest draw for a request holds the postings (a redraw replaces the team).
        if held is None or (_utc(row.assigned_at), row.event_id) > (
            _utc(held.assigned_at),
            held.event_id,
        ):
            latest[row.request_id] = row
    counted: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in latest.values():
        if level is Level.ZONE:
            if row.zone_id not in NOT_A_ZONE:
                counted[(row.zone_id, row.zone_id, Kpi.TEAMS_ASSIGNED.value)].append(row.event_id)
            continue
        for member in _members(row.members):
            subject = member.person_id if level is Level.PERSON else member.township_id
            if subject:
                # Two members from one township are two postings of the same draw.
                counted[(subject, row.zone_id, Kpi.TEAM_ASSIGNMENTS.value)].append(row.event_id)
    if subject_id is None:
        return dict(counted)
    return {key: events for key, events in counted.items() if key[0] == subject_id}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
            tuple((member.person_id, member.leader) for member in _members(row.members)),
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
