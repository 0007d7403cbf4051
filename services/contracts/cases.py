"""Events published by the cases service."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from services.contracts.base import IntegrationEvent

TEAMS_TOPIC = "xiezuo.cases.teams"

Stage = Literal["verification", "investigation", "hearing", "review"]


class TeamRequested(IntegrationEvent):
    """Cases needs a team for one stage of a clue or case; staffing draws it."""

    event_type: ClassVar[str] = "xiezuo.cases.team_requested.v1"
    topic: ClassVar[str] = TEAMS_TOPIC

    request_id: str
    case_id: str
    stage: Stage
    # 异地办案: nobody from the subject's own township may be drawn.
    subject_township_id: str
    # A stable key for the person reported (assigned by intake/cases), matched against
    # staff's declared conflicts; never a name.
    subject_key: str
    team_size: int = Field(ge=1, le=20)
    required_skills: list[str] = Field(default_factory=list)
    # e.g. everyone who investigated the case, for a hearing or review team.
    excluded_person_ids: list[str] = Field(default_factory=list)
    pool: Literal["zone", "county"] = "zone"
    requested_by: str
    requested_at: datetime

    def subject_id(self) -> str | None:
        """The case the team is for."""
        return self.case_id
