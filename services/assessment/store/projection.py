"""Writing and reading the KPI projection rows and the events that contributed to them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.facts import KpiIncrement
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.store.derived import derived_counts
from services.assessment.store.tables import (
    AssessedUnit,
    AttendanceDay,
    CampaignClue,
    CampaignRectification,
    CaseMilestone,
    CaseSubject,
    CaseTeam,
    CaseWorkStep,
    CollaborationLetter,
    FormOutcome,
    KpiContribution,
    KpiTally,
    LimitBreach,
    LimitClock,
    QualitativeMark,
    TeamRequest,
    UnitName,
)
from services.assessment.store.timeliness import Derived
from services.runtime.bulk import BulkInsert, dialect_insert

TALLY_KEY = ("county_id", "quarter", "level", "subject_id", "zone_id", "kpi")
CONTRIBUTION_KEY = ("event_id", "level", "subject_id", "zone_id", "kpi")


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _tally_upsert(insert: Any) -> Any:
    """Add each row's value to the tally, creating the row the first time."""
    return insert.on_conflict_do_update(
        index_elements=list(TALLY_KEY), set_={"value": insert.table.c.value + insert.excluded.value}
    )


_TALLY_COLUMNS = (*TALLY_KEY, "value")
_CONTRIBUTION_COLUMNS = (*CONTRIBUTION_KEY, "county_id", "quarter", "delta", "case_id")
# Each compiled once per dialect and bound by the driver: apply_increments runs for every
# batch, and building the upsert (its `excluded` columns) or a dict per row through
# SQLAlchemy cost more than the database's own work.
_TALLY_WRITE = BulkInsert(
    _table(KpiTally), lambda dialect: _tally_upsert(dialect_insert(dialect, _table(KpiTally)))
)
# No ON CONFLICT: a duplicate contribution can only be a replayed event the inbox let through
# by design (a rebuild into a non-empty table); the tally would then be wrong, so it fails.
_CONTRIBUTION_WRITE = BulkInsert(_table(KpiContribution))


# One event's share of a KPI, in _CONTRIBUTION_COLUMNS order.
Contribution = tuple[str, str, str, str, str, str, str, int, str]


def contributions_of(
    event_id: str, increments: Sequence[KpiIncrement], case_id: str = ""
) -> list[Contribution]:
    """An event's increments as contribution rows (no database): a catch-up makes them while
    reading, so its write lock is held only for the sums and the statements."""
    return [
        (event_id, level.value, subject, zone, kpi, county, str(quarter), delta, case_id)
        for county, zone, level, subject, quarter, kpi, delta in increments
    ]


async def apply_increments(
    session: AsyncSession,
    applied: Sequence[tuple[str, Sequence[KpiIncrement]]],
    case_ids: Mapping[str, str] | None = None,
) -> None:
    """Add each event's increments to the projection and record who contributed what.

    Runs in the caller's transaction (the consumer's, or a rebuild batch). Increments to the
    same row within one event must already be merged (facts.merged). `case_ids` names the
    clue/case each event id concerns, for ExplainScore's way to the case file.
    """
    cases = case_ids or {}
    await apply_contributions(
        session,
        [
            row
            for event_id, increments in applied
            for row in contributions_of(event_id, increments, cases.get(event_id, ""))
        ],
    )


async def apply_contributions(session: AsyncSession, contributions: Sequence[Contribution]) -> None:
    """Add the contributions to their tallies (one upsert of the sums) and record them."""
    totals: dict[tuple[str, str, str, str, str, str], int] = defaultdict(int)
    for _, level, subject, zone, kpi, county, quarter, delta, _ in contributions:
        totals[(county, quarter, level, subject, zone, kpi)] += delta
    if not totals:
        return
    connection = await session.connection()
    await _TALLY_WRITE.values(
        connection, _TALLY_COLUMNS, [(*key, value) for key, value in totals.items()]
    )
    await _CONTRIBUTION_WRITE.values(connection, _CONTRIBUTION_COLUMNS, contributions)


async def place_unit(
    session: AsyncSession, *, county_id: str, level: Level, subject_id: str, zone_id: str, name: str
) -> None:
    """Record (or move) a unit in the directory of units that are ranked even when idle."""
    connection = await session.connection()
    statement = dialect_insert(connection.dialect, _table(AssessedUnit)).values(
        county_id=county_id, level=level.value, subject_id=subject_id, zone_id=zone_id, name=name
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["county_id", "level", "subject_id"],
            set_={"zone_id": zone_id, "name": name},
        )
    )


async def tallies(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str | None = None,
    derived: Derived | None = None,
) -> dict[str, dict[str, int]]:
    """KPI counts by subject (summed over zones) for one county, quarter and level.

    `derived` is `derived_counts` for the same scope when the caller has it already.
    """
    query = select(KpiTally).where(
        KpiTally.county_id == county_id,
        KpiTally.quarter == str(quarter),
        KpiTally.level == level.value,
    )
    if subject_id is not None:
        query = query.where(KpiTally.subject_id == subject_id)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (await session.exec(query)).all():
        counts[row.subject_id][row.kpi] += row.value
    # Within-limit counts are judged from per-case facts when read (order-independent).
    if derived is None:
        derived = await derived_counts(
            session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
        )
    for (subject, _zone, kpi), event_ids in derived.items():
        counts[subject][kpi] += len(event_ids)
    return {subject: dict(kpis) for subject, kpis in counts.items()}


async def zone_known(session: AsyncSession, *, county_id: str, zone_id: str) -> bool:
    """Whether the county has this zone: a township placed in it, or anything counted for it."""
    placed = select(AssessedUnit.subject_id).where(
        AssessedUnit.county_id == county_id, AssessedUnit.zone_id == zone_id
    )
    counted = select(KpiTally.subject_id).where(
        KpiTally.county_id == county_id, KpiTally.zone_id == zone_id
    )
    marked = select(QualitativeMark.subject_id).where(
        QualitativeMark.county_id == county_id,
        QualitativeMark.level == Level.ZONE.value,
        QualitativeMark.subject_id == zone_id,
    )
    for query in (placed, counted, marked):
        if (await session.exec(query.limit(1))).first() is not None:
            return True
    return False


async def subject_zones(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    derived: Derived | None = None,
) -> dict[str, set[str]]:
    """The zones each subject of a level was counted in (and, for townships, placed in)."""
    zones: dict[str, set[str]] = defaultdict(set)
    query = select(KpiTally.subject_id, KpiTally.zone_id).where(
        KpiTally.county_id == county_id,
        KpiTally.quarter == str(quarter),
        KpiTally.level == level.value,
    )
    for subject, zone in (await session.exec(query.distinct())).all():
        zones[subject].add(zone)
    if derived is None:
        derived = await derived_counts(session, county_id=county_id, quarter=quarter, level=level)
    for subject, zone, _kpi in derived:
        zones[subject].add(zone)
    units = select(AssessedUnit.subject_id, AssessedUnit.zone_id).where(
        AssessedUnit.county_id == county_id, AssessedUnit.level == level.value
    )
    for subject, zone in (await session.exec(units)).all():
        zones[subject].add(zone)
    return dict(zones)


async def contributing_events(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str,
    limit: int,
    derived: Derived | None = None,
) -> dict[str, list[str]]:
    """Event ids behind each KPI of a unit (at most `limit` per KPI), oldest id first.

    `derived` is `derived_counts` for the level (or the unit) when the caller has it already.
    """
    query = (
        select(KpiContribution.kpi, KpiContribution.event_id)
        .where(
            KpiContribution.county_id == county_id,
            KpiContribution.quarter == str(quarter),
            KpiContribution.level == level.value,
            KpiContribution.subject_id == subject_id,
        )
        .order_by(col(KpiContribution.kpi), col(KpiContribution.event_id))
    )
    found: dict[str, list[str]] = defaultdict(list)
    for kpi, event_id in (await session.exec(query)).all():
        if len(found[kpi]) < limit:
            found[kpi].append(event_id)
    if derived is None:
        derived = await derived_counts(
            session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
        )
    for (subject, _zone, kpi), event_ids in sorted(derived.items()):
        if subject != subject_id:
            continue
        found[kpi] = sorted(set(found[kpi]) | set(event_ids))[:limit]
    return dict(found)


async def projection_rows(session: AsyncSession) -> list[tuple[Any, ...]]:
    """Every projection row in key order: what a rebuild must reproduce exactly."""
    tally_rows = (await session.exec(select(KpiTally))).all()
    contribution_rows = (await session.exec(select(KpiContribution))).all()
    unit_rows = (await session.exec(select(AssessedUnit))).all()
    campaign_clues = (await session.exec(select(CampaignClue))).all()
    milestones = (await session.exec(select(CaseMilestone))).all()
    attendance = (await session.exec(select(AttendanceDay))).all()
    clocks = (await session.exec(select(LimitClock))).all()
    rectifications = (await session.exec(select(CampaignRectification))).all()
    breaches = (await session.exec(select(LimitBreach))).all()
    outcomes = (await session.exec(select(FormOutcome))).all()
    subjects = (await session.exec(select(CaseSubject))).all()
    requests = (await session.exec(select(TeamRequest))).all()
    teams = (await session.exec(select(CaseTeam))).all()
    steps = (await session.exec(select(CaseWorkStep))).all()
    names = (await session.exec(select(UnitName))).all()
    letters = (await session.exec(select(CollaborationLetter))).all()
    return sorted(
        [("tally", *(getattr(r, k) for k in TALLY_KEY), r.value) for r in tally_rows]
        + [
            ("contribution", *(getattr(r, k) for k in CONTRIBUTION_KEY), r.quarter, r.delta)
            + (r.case_id,)
            for r in contribution_rows
        ]
        + [("unit", r.county_id, r.level, r.subject_id, r.zone_id, r.name) for r in unit_rows]
        + [
            ("campaign_clue", r.clue_id, r.county_id, r.zone_id, r.campaign_id, r.categories)
            for r in campaign_clues
        ]
        + [("milestone", r.case_id, r.milestone, r.event_id, r.county_id) for r in milestones]
        + [
            ("attendance", r.county_id, r.person_id, r.day, r.zone_id, r.status, r.event_id)
            for r in attendance
        ]
        + [
            ("clock", r.county_id, r.case_id, r.clock, r.zone_id, r.township_id, r.quarter)
            + (r.event_id,)
            for r in clocks
        ]
        + [
            ("rectification", r.item_id, r.campaign_id, r.zone_id, r.closed_at, r.overdue)
            for r in rectifications
        ]
        + [("breach", r.county_id, r.case_id, r.clock, r.deadline_id, r.event_id) for r in breaches]
        + [
            ("form", r.county_id, r.case_id, r.event_id, r.zone_id, r.township_id, r.quarter)
            + (r.form, r.basis, r.replaces)
            for r in outcomes
        ]
        + [("subject", r.county_id, r.case_id, r.subject_key) for r in subjects]
        + [("request", r.county_id, r.request_id, r.case_id, r.stage) for r in requests]
        + [
            ("team", r.county_id, r.event_id, r.case_id, r.request_id, r.stage, r.zone_id)
            + (r.members,)
            for r in teams
        ]
        + [("step", r.county_id, r.case_id, r.event_id, r.kind, r.quarter) for r in steps]
        + [("name", r.county_id, r.level, r.subject_id, r.name) for r in names]
        + [
            ("letter", r.county_id, r.letter_id, r.side, r.zone_id, r.kind, r.counterpart_county)
            + (r.sent_quarter, r.sent_event, r.answered_quarter, r.answered_event)
            + (r.overdue_quarter, r.overdue_event)
            for r in letters
        ]
    )
