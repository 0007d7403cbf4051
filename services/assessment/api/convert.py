"""Conversions between assessment's domain objects and its gRPC messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xiezuo.assessment.v1 import assessment_pb2 as pb

from services.assessment.domain.four_forms import FORMS, form_kpi
from services.assessment.domain.kpis import Kpi, Level
from services.assessment.domain.ranking import RankedUnit, Tier
from services.assessment.domain.scoring import ComponentKind
from services.assessment.store.scorecards import Scorecard

LEVELS: Mapping[int, Level] = {
    pb.LEVEL_ZONE: Level.ZONE,
    pb.LEVEL_TOWNSHIP: Level.TOWNSHIP,
    pb.LEVEL_PERSON: Level.PERSON,
}
LEVEL_CODES: Mapping[Level, pb.Level.ValueType] = {
    Level.ZONE: pb.LEVEL_ZONE,
    Level.TOWNSHIP: pb.LEVEL_TOWNSHIP,
    Level.PERSON: pb.LEVEL_PERSON,
}
TIERS: Mapping[Tier, pb.Tier.ValueType] = {
    Tier.TOP: pb.TIER_TOP,
    Tier.MIDDLE: pb.TIER_MIDDLE,
    Tier.BOTTOM: pb.TIER_BOTTOM,
}
KINDS: Mapping[ComponentKind, pb.ComponentKind.ValueType] = {
    ComponentKind.BASE: pb.COMPONENT_KIND_BASE,
    ComponentKind.BONUS: pb.COMPONENT_KIND_BONUS,
    ComponentKind.RATIO: pb.COMPONENT_KIND_RATIO,
    ComponentKind.DEDUCTION: pb.COMPONENT_KIND_DEDUCTION,
    ComponentKind.QUALITATIVE: pb.COMPONENT_KIND_QUALITATIVE,
}


def four_forms_message(counts: Mapping[str, int]) -> pb.FourForms:
    """The four-forms counts of a unit (all zero for a staff member)."""
    form_1, form_2, form_3, form_4 = (counts.get(form_kpi(form), 0) for form in FORMS)
    return pb.FourForms(
        people=counts.get(Kpi.FOUR_FORMS.value, 0),
        form_1=form_1,
        form_2=form_2,
        form_3=form_3,
        form_4=form_4,
    )


def scorecard_message(
    card: Scorecard,
    events: Mapping[str, Sequence[str]] | None = None,
    name: str = "",
    cases: Mapping[str, str] | None = None,
) -> pb.Scorecard:
    """A scorecard as its message; with `events`, each component lists its event ids.

    With `cases` (event id → clue/case), each component also lists the cases behind it.
    """
    components = []
    for part in card.score.components:
        event_ids: list[str] = []
        if events is not None and part.kpi:
            event_ids = list(events.get(part.kpi, ()))
            if part.of_kpi:
                event_ids += [e for e in events.get(part.of_kpi, ()) if e not in event_ids]
        case_ids = list(dict.fromkeys(cases[e] for e in event_ids if e in cases)) if cases else []
        components.append(
            pb.ScoreComponent(
                kind=KINDS[part.kind],
                kpi=part.kpi,
                count=part.count,
                of_kpi=part.of_kpi,
                of_count=part.of_count,
                points=float(part.points),
                event_ids=event_ids,
                case_ids=case_ids,
            )
        )
    return pb.Scorecard(
        county_id=card.county_id,
        level=LEVEL_CODES[card.level],
        subject_id=card.subject_id,
        quarter=str(card.quarter),
        rules_version=card.score.rules_version,
        counts=[pb.KpiCount(kpi=kpi, value=value) for kpi, value in sorted(card.counts.items())],
        quantitative=float(card.score.quantitative),
        qualitative=float(card.score.qualitative),
        total=float(card.score.total),
        components=components,
        name=name,
        four_forms=four_forms_message(card.counts),
    )


def ranking_entry(
    unit: RankedUnit,
    zones: Sequence[str],
    name: str = "",
    counts: Mapping[str, int] | None = None,
) -> pb.RankingEntry:
    """A ranked unit as its message, with its name and four forms when known."""
    return pb.RankingEntry(
        subject_id=unit.subject_id,
        zone_ids=sorted(zones),
        total=float(unit.total),
        rank=unit.rank,
        tier=TIERS[unit.tier],
        name=name,
        four_forms=four_forms_message(counts or {}),
    )
