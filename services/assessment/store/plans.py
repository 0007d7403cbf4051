"""Work plans and their targets."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.plan import Target, WorkPlan
from services.assessment.store.tables import WorkPlanRow, WorkPlanTarget


async def save_plan(
    session: AsyncSession, plan: WorkPlan, *, defined_by: str, defined_at: datetime
) -> int:
    """Replace the county's plan for the year; returns its new revision."""
    row = await session.get(WorkPlanRow, (plan.county_id, plan.year))
    revision = 1 if row is None else row.revision + 1
    themes = json.dumps({str(number): theme for number, theme in sorted(plan.themes.items())})
    if row is None:
        row = WorkPlanRow(
            county_id=plan.county_id,
            year=plan.year,
            themes=themes,
            revision=revision,
            defined_by=defined_by,
            defined_at=defined_at,
        )
    else:
        row.themes, row.revision = themes, revision
        row.defined_by, row.defined_at = defined_by, defined_at
    session.add(row)
    await session.exec(
        delete(WorkPlanTarget).where(
            col(WorkPlanTarget.county_id) == plan.county_id, col(WorkPlanTarget.year) == plan.year
        )
    )
    for target in plan.targets:
        session.add(
            WorkPlanTarget(
                county_id=plan.county_id,
                year=plan.year,
                quarter=target.quarter,
                zone_id=target.zone_id,
                kpi=target.kpi,
                target=target.target,
            )
        )
    return revision


async def load_plan(session: AsyncSession, *, county_id: str, year: int) -> WorkPlan | None:
    """The county's plan for the year, if one was defined."""
    row = await session.get(WorkPlanRow, (county_id, year))
    if row is None:
        return None
    query = (
        select(WorkPlanTarget)
        .where(WorkPlanTarget.county_id == county_id, WorkPlanTarget.year == year)
        .order_by(col(WorkPlanTarget.quarter), col(WorkPlanTarget.zone_id), col(WorkPlanTarget.kpi))
    )
    targets = tuple(
        Target(quarter=t.quarter, zone_id=t.zone_id, kpi=t.kpi, target=t.target)
        for t in (await session.exec(query)).all()
    )
    themes = {int(number): theme for number, theme in json.loads(row.themes).items()}
    return WorkPlan(county_id=county_id, year=year, themes=themes, targets=targets)
