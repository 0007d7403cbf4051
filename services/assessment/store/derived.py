"""Counts derived when read: limits met, the four forms, staff work, help between counties."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.four_forms import FourFormsRules, load_four_forms
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import Quarter
from services.assessment.store.collaboration import collaboration_counts
from services.assessment.store.four_forms import form_counts
from services.assessment.store.staff_work import staff_counts, team_counts
from services.assessment.store.timeliness import Derived, limit_counts


async def derived_counts(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    subject_id: str | None = None,
    forms: FourFormsRules | None = None,
) -> Derived:
    """(subject, zone, kpi) → events counted, for every count judged when read.

    `forms` is the four-forms mapping in use (Scoring holds it); without it the shipped one.
    """
    counted = dict(
        await limit_counts(
            session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
        )
    )
    counted.update(
        await form_counts(
            session,
            county_id=county_id,
            quarter=quarter,
            level=level,
            rules=forms or load_four_forms(),
            subject_id=subject_id,
        )
    )
    counted.update(
        await staff_counts(
            session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
        )
    )
    counted.update(
        await team_counts(
            session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
        )
    )
    counted.update(
        await collaboration_counts(
            session, county_id=county_id, quarter=quarter, level=level, subject_id=subject_id
        )
    )
    return counted
