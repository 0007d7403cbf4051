"""Events published by the staffing service."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.base import IntegrationEvent

REGISTRY_TOPIC = "xiezuo.staffing.registry"
DRAWS_TOPIC = "xiezuo.staffing.draws"


class TownshipPlaced(IntegrationEvent):
    """A township belongs to a zone from a date on; intake routes reports by it."""

    event_type: ClassVar[str] = "xiezuo.staffing.township_placed.v1"
    topic: ClassVar[str] = REGISTRY_TOPIC
    key_pattern: ClassVar[str] = "<county_id>"

    township_id: str
    township_name: str
    effective_from: date

    def partition_key(self) -> str:
        """Per county: registry changes must be applied in the order they were made.

        A township moved from one zone to another and back would, keyed by zone, land on two
        partitions and could be applied in the wrong order; the county key keeps one order.
        """
        return self.county_id

    def subject_id(self) -> str | None:
        """The township placed."""
        return self.township_id


class UnitNamed(IntegrationEvent):
    """A zone's or staff member's display name, for reports beside the id.

    Never published for a village informant: their identity stays in staffing.
    """

    event_type: ClassVar[str] = "xiezuo.staffing.unit_named.v1"
    topic: ClassVar[str] = REGISTRY_TOPIC
    key_pattern: ClassVar[str] = "<county_id>"

    kind: Literal["zone", "person"]
    unit_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)

    def partition_key(self) -> str:
        """Per county, like the rest of the registry: a rename is applied after the name."""
        return self.county_id

    def subject_id(self) -> str | None:
        """The zone or person named."""
        return self.unit_id


class TeamMember(BaseModel):
    """One person drawn onto a team."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: str
    home_township_id: str
    leader: bool = False


class TeamAssigned(IntegrationEvent):
    """A draw filled a TeamRequested."""

    event_type: ClassVar[str] = "xiezuo.staffing.team_assigned.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    request_id: str
    case_id: str
    stage: str
    draw_id: str
    members: list[TeamMember] = Field(min_length=1)
    assigned_at: datetime

    def subject_id(self) -> str | None:
        """The case the team is for."""
        return self.case_id


class TeamUnfillable(IntegrationEvent):
    """A draw could not fill a TeamRequested; `reasons` say why."""

    event_type: ClassVar[str] = "xiezuo.staffing.team_unfillable.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    request_id: str
    case_id: str
    stage: str
    draw_id: str
    reasons: list[str] = Field(min_length=1)
    decided_at: datetime

    def subject_id(self) -> str | None:
        """The case the team was for."""
        return self.case_id


class AssistanceTeamDrawn(IntegrationEvent):
    """A draw for an accepted assistance letter (协查函): the team, or why none was formed.

    Its own type (not TeamAssigned): the letter is no case of this county's cases service.
    """

    event_type: ClassVar[str] = "xiezuo.staffing.assistance_team_drawn.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    letter_id: str
    request_id: str
    draw_id: str
    # Empty when no team could be formed; `reasons` then say why.
    members: list[TeamMember] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    drawn_at: datetime

    def subject_id(self) -> str | None:
        """The letter the team is for."""
        return self.letter_id


class RecusalRecorded(IntegrationEvent):
    """A recusal (回避) decision: a recused person loses access to the case at once."""

    event_type: ClassVar[str] = "xiezuo.staffing.recusal_recorded.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    recusal_id: str
    case_id: str
    person_id: str
    ground: str
    raised_by_role: str
    granted: bool
    decided_by: str
    decided_at: datetime

    def subject_id(self) -> str | None:
        """The case concerned."""
        return self.case_id


class DrawOverridden(IntegrationEvent):
    """A zone chief replaced a drawn team, with a reason (assessment counts overrides)."""

    event_type: ClassVar[str] = "xiezuo.staffing.draw_overridden.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    override_id: str
    overridden_draw_id: str
    request_id: str
    case_id: str
    member_person_ids: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1)
    overridden_by: str
    overridden_at: datetime

    def subject_id(self) -> str | None:
        """The case the team is for."""
        return self.case_id


class AssignmentDeclined(IntegrationEvent):
    """A drawn person declined with a reason; `redraw_id` is the recorded replacement draw."""

    event_type: ClassVar[str] = "xiezuo.staffing.assignment_declined.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    draw_id: str
    redraw_id: str
    request_id: str
    case_id: str
    person_id: str
    reason: str = Field(min_length=1)
    declined_at: datetime

    def subject_id(self) -> str | None:
        """The case concerned."""
        return self.case_id


class WorkloadReleased(IntegrationEvent):
    """Open assignments ended (case closed, decided, transferred, or the team replaced)."""

    event_type: ClassVar[str] = "xiezuo.staffing.workload_released.v1"
    topic: ClassVar[str] = DRAWS_TOPIC

    case_id: str
    person_ids: list[str] = Field(min_length=1)
    # The team stages (verification, investigation, hearing, review) whose work ended.
    team_stages: list[str] = Field(min_length=1)
    reason: str
    released_at: datetime

    def subject_id(self) -> str | None:
        """The case concerned."""
        return self.case_id


TRAINING_TOPIC = "xiezuo.staffing.training"


class TrainingRecorded(IntegrationEvent):
    """A person took a day of training (assessment counts hours by type)."""

    event_type: ClassVar[str] = "xiezuo.staffing.training_recorded.v1"
    topic: ClassVar[str] = TRAINING_TOPIC

    record_id: str
    person_id: str
    course: str
    # lecture, case_study, drill or study_visit.
    training_type: str
    hours: float = Field(gt=0)
    on_date: date
    recorded_by: str
    recorded_at: datetime

    def subject_id(self) -> str | None:
        """The person trained."""
        return self.person_id


class AttendanceRecorded(IntegrationEvent):
    """A person's attendance on a day; a later event for the same day corrects it."""

    event_type: ClassVar[str] = "xiezuo.staffing.attendance_recorded.v1"
    topic: ClassVar[str] = TRAINING_TOPIC

    person_id: str
    day: date
    # present, absent, on_leave, on_assignment or in_training.
    status: str
    recorded_by: str
    recorded_at: datetime

    def subject_id(self) -> str | None:
        """The person concerned."""
        return self.person_id
