"""Special supervision campaigns (专项监督): a domain, a period and the zones taking part."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Campaign:
    """One campaign of a county."""

    campaign_id: str
    county_id: str
    name: str
    # e.g. poverty-alleviation funds, environment, livelihood.
    domain: str
    starts_on: date
    ends_on: date
    zone_ids: tuple[str, ...]


@dataclass(frozen=True)
class CampaignView:
    """What a campaign produced so far."""

    campaign: Campaign
    clues_by_category: dict[str, int]
    clues_by_zone: dict[str, int]
    # Milestones of the campaign's clues (filed, decided, transferred, closed) → count.
    case_milestones: dict[str, int]
    # Rectification items opened under the campaign: opened, open, closed, closed_on_time.
    rectification: dict[str, int] = field(default_factory=dict)


def campaign_problems(campaign: Campaign) -> list[tuple[str, str]]:
    """(field, problem) for everything wrong with a campaign; empty when it is valid."""
    problems: list[tuple[str, str]] = []
    for name in ("campaign_id", "county_id", "name", "domain"):
        if not getattr(campaign, name).strip():
            problems.append((name, "is required"))
    if campaign.ends_on < campaign.starts_on:
        problems.append(("ends_on", "must not be before starts_on"))
    if not campaign.zone_ids:
        problems.append(("zone_ids", "name at least one zone"))
    if len(set(campaign.zone_ids)) != len(campaign.zone_ids):
        problems.append(("zone_ids", "repeat a zone"))
    return problems
