"""Events published by the assessment service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from services.contracts.base import IntegrationEvent

SCORECARDS_TOPIC = "xiezuo.assessment.scorecards"


class ScorecardPublished(IntegrationEvent):
    """A unit's official score for a closed quarter (late events after the close do not change
    it). `zone_id` is the zone for a zone, else the first zone the unit was counted in."""

    event_type: ClassVar[str] = "xiezuo.assessment.scorecard_published.v1"
    topic: ClassVar[str] = SCORECARDS_TOPIC
    key_pattern: ClassVar[str] = "<county_id>"

    level: Literal["zone", "township", "person"]
    # The zone, township or person id (`subject_id()` is the CloudEvents subject).
    unit_id: str
    quarter: str
    rules_version: str
    quantitative: Decimal
    qualitative: Decimal
    total: Decimal
    rank: int
    tier: Literal["top", "middle", "bottom"]
    ranked_units: int
    closed_at: datetime

    def partition_key(self) -> str:
        """Per county: one county's close is one ordered batch."""
        return self.county_id

    def subject_id(self) -> str | None:
        """The unit scored, with its level."""
        return f"{self.level}:{self.unit_id}"
