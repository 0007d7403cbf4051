"""Rankings with tiers: the reward list at the top, the correction list at the bottom."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from services.assessment.domain.scoring_rules import Tiers


class Tier(enum.StrEnum):
    """Which list a ranked unit is on."""

    TOP = "top"
    MIDDLE = "middle"
    BOTTOM = "bottom"


@dataclass(frozen=True)
class RankedUnit:
    """A unit's place in a ranking."""

    subject_id: str
    total: Decimal
    rank: int
    tier: Tier


def rank_units(totals: Mapping[str, Decimal], tiers: Tiers) -> list[RankedUnit]:
    """Competition ranking (1, 2, 2, 4): equal scores share a rank and therefore a tier.

    A tie across a tier edge puts everyone tied on the list (nobody is demoted by their id);
    a unit that qualifies for both lists (very few units) is on the top list.
    """
    values = sorted(totals.values())
    ranked = []
    for subject, total in sorted(totals.items(), key=lambda item: (-item[1], item[0])):
        rank = 1 + sum(1 for value in values if value > total)
        from_bottom = 1 + sum(1 for value in values if value < total)
        if rank <= tiers.top:
            tier = Tier.TOP
        elif from_bottom <= tiers.bottom:
            tier = Tier.BOTTOM
        else:
            tier = Tier.MIDDLE
        ranked.append(RankedUnit(subject, total, rank, tier))
    return ranked
