"""Per-case outcomes in the four forms, and each quarter's people derived from them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.facts import NOT_A_ZONE
from services.assessment.domain.four_forms import (
    FourFormsRules,
    Outcome,
    form_kpi,
    people_in_forms,
)
from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.quarter import Quarter
from services.assessment.store.tables import CaseSubject, FormOutcome


def outcome_row(
    *,
    county_id: str,
    case_id: str,
    event_id: str,
    zone_id: str,
    township_id: str,
    quarter: Quarter,
    occurred_at: datetime,
    form: int,
    basis: str,
    replaces: bool,
) -> dict[str, Any]:
    """One classified outcome of a case, as a FormOutcome row (kept once per event)."""
    return {
        "county_id": county_id,
        "case_id": case_id,
        "event_id": event_id,
        "zone_id": zone_id,
        "township_id": township_id,
        "quarter": str(quarter),
        "occurred_at": occurred_at,
        "form": form,
        "basis": basis[:64],
        "replaces": replaces,
    }


async def form_counts(
    session: AsyncSession,
    *,
    county_id: str,
    quarter: Quarter,
    level: Level,
    rules: FourFormsRules,
    subject_id: str | None = None,
) -> dict[tuple[str, str, str], list[str]]:
    """(zone or township, zone, kpi) → the outcome events placing each person, for a quarter."""
    if level is Level.PERSON:
        return {}
    in_quarter = select(FormOutcome.case_id).where(
        FormOutcome.county_id == county_id, FormOutcome.quarter == str(quarter)
    )
    rows = (
        await session.exec(
            select(FormOutcome).where(
                FormOutcome.county_id == county_id,
                col(FormOutcome.case_id).in_(in_quarter),
            )
        )
    ).all()
    if not rows:
        return {}
    subjects = dict(
        (
            await session.exec(
                select(CaseSubject.case_id, CaseSubject.subject_key).where(
                    CaseSubject.county_id == county_id,
                    col(CaseSubject.case_id).in_(in_quarter),
                )
            )
        ).all()
    )
    outcomes = [
        Outcome(
            row.case_id,
            row.event_id,
            row.occurred_at,
            row.quarter,
            row.zone_id,
            row.township_id,
            row.form,
            row.replaces,
        )
        for row in rows
    ]
    counted: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for placed in people_in_forms(outcomes, str(quarter), subjects, rules):
        if level is Level.ZONE:
            subject = placed.zone_id if placed.zone_id not in NOT_A_ZONE else ""
        else:
            subject = placed.township_id
        if not subject or (subject_id is not None and subject != subject_id):
            continue
        for kpi in (Kpi.FOUR_FORMS.value, form_kpi(placed.form)):
            counted[(subject, placed.zone_id, kpi)].append(placed.event_id)
    return dict(counted)
