"""Events published by the intake service. None of them carries a reporter's identity."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.base import IntegrationEvent

CLUES_TOPIC = "xiezuo.intake.clues"


class ReportedSubject(BaseModel):
    """The official a report is about (never the reporter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    post: str
    unit: str
    township_id: str
    village: str = ""
    cadre_level: str


class ClueRegistered(IntegrationEvent):
    """A report became a numbered clue that the cases service must dispose of."""

    event_type: ClassVar[str] = "xiezuo.intake.clue_registered.v1"
    topic: ClassVar[str] = CLUES_TOPIC

    clue_id: str
    report_id: str
    township_id: str
    channel: str
    allegation_categories: list[str] = Field(min_length=1)
    subject: ReportedSubject
    # Whether the reporter gave a name matters for priority and feedback deadlines; the
    # name itself stays in intake's vault.
    real_name: bool
    campaign_id: str | None = None
    received_at: datetime
    registered_at: datetime

    def subject_id(self) -> str | None:
        """The clue this event is about."""
        return self.clue_id
