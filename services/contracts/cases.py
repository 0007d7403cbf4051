"""Events published by the cases service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

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
    # A joint case (联合办案) spans several townships: nobody from ANY of them may be drawn.
    # Always includes subject_township_id when set; staffing must honour every entry.
    excluded_township_ids: list[str] = Field(default_factory=list)
    # e.g. everyone who investigated the case, for a hearing or review team.
    excluded_person_ids: list[str] = Field(default_factory=list)
    pool: Literal["zone", "county"] = "zone"
    requested_by: str
    requested_at: datetime

    def subject_id(self) -> str | None:
        """The case the team is for."""
        return self.case_id


WORKFLOW_TOPIC = "xiezuo.cases.workflow"
DEADLINES_TOPIC = "xiezuo.cases.deadlines"


class CaseStepRecorded(IntegrationEvent):
    """Common shape of every workflow transition cases publishes (not published itself)."""

    case_id: str
    township_id: str
    # The workflow action taken, e.g. "approve_disposal", and the stages either side of it.
    action: str
    from_stage: str
    to_stage: str
    # The person who acted (staff id, never a reporter).
    actor: str
    reason: str = ""
    rule_version: str
    occurred_at: datetime
    # Action-specific facts: the way chosen, days granted, sanctions with effect periods, …
    detail: dict[str, Any] = Field(default_factory=dict)

    def subject_id(self) -> str | None:
        """The clue/case the step was taken on."""
        return self.case_id


class StageChanged(CaseStepRecorded):
    """Any workflow step without an event of its own (plan approved, sent back, …)."""

    event_type: ClassVar[str] = "xiezuo.cases.stage_changed.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class ClueDisposed(CaseStepRecorded):
    """A clue's disposal (one of the four ways) was approved."""

    event_type: ClassVar[str] = "xiezuo.cases.clue_disposed.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class CaseFiled(CaseStepRecorded):
    """The filing chain approved the case (立案); its investigation clock runs."""

    event_type: ClassVar[str] = "xiezuo.cases.case_filed.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class ExtensionGranted(CaseStepRecorded):
    """A time limit was extended by `detail.days`, approved one level up."""

    event_type: ClassVar[str] = "xiezuo.cases.extension_granted.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class CaseDecided(CaseStepRecorded):
    """A decision was approved; `detail.sanctions` carry their effect periods."""

    event_type: ClassVar[str] = "xiezuo.cases.case_decided.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class CaseTransferred(CaseStepRecorded):
    """The case was transferred to the procuratorate (移送检察机关)."""

    event_type: ClassVar[str] = "xiezuo.cases.case_transferred.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class CaseClosed(CaseStepRecorded):
    """The clue or case was closed (closure, refer, cancellation); staffing frees workload."""

    event_type: ClassVar[str] = "xiezuo.cases.case_closed.v1"
    topic: ClassVar[str] = WORKFLOW_TOPIC


class DeadlineNotice(IntegrationEvent):
    """Common shape of deadline notices (not published itself)."""

    deadline_id: str
    case_id: str
    # The time limit: disposal, investigation, hearing, …
    kind: str
    due_at: datetime
    rule_version: str
    # "case" (case_id is a clue/case) or "rectification" (case_id is a rectification item id).
    record_type: Literal["case", "rectification"] = "case"

    def subject_id(self) -> str | None:
        """The clue/case (or rectification item) whose deadline it is."""
        return self.case_id


class DeadlineApproaching(DeadlineNotice):
    """A deadline enters its warning window; published once per deadline."""

    event_type: ClassVar[str] = "xiezuo.cases.deadline_approaching.v1"
    topic: ClassVar[str] = DEADLINES_TOPIC


class DeadlineBreached(DeadlineNotice):
    """A deadline passed unmet; published once per deadline."""

    event_type: ClassVar[str] = "xiezuo.cases.deadline_breached.v1"
    topic: ClassVar[str] = DEADLINES_TOPIC


RECTIFICATION_TOPIC = "xiezuo.cases.rectification"


class RectificationNotice(IntegrationEvent):
    """Common shape of rectification item events (not published itself)."""

    item_id: str
    township_id: str
    # supervision, campaign or inspection_tour.
    source: str
    source_ref: str
    owner_unit: str
    due_at: datetime
    rule_version: str

    def subject_id(self) -> str | None:
        """The rectification item."""
        return self.item_id


class RectificationOpened(RectificationNotice):
    """A rectification item (整改) was opened with its due date from the rules."""

    event_type: ClassVar[str] = "xiezuo.cases.rectification_opened.v1"
    topic: ClassVar[str] = RECTIFICATION_TOPIC

    opened_by: str
    opened_at: datetime


class RectificationClosed(RectificationNotice):
    """The zone verified a rectification item as done; `overdue` if after its due date."""

    event_type: ClassVar[str] = "xiezuo.cases.rectification_closed.v1"
    topic: ClassVar[str] = RECTIFICATION_TOPIC

    verified_by: str
    closed_at: datetime
    overdue: bool
