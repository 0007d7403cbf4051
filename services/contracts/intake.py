"""Events published by the intake service. None of them carries a reporter's identity."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.base import IntegrationEvent

CLUES_TOPIC = "xiezuo.intake.clues"
REPORTS_TOPIC = "xiezuo.intake.reports"


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
    # Triage score 0-100 from intake's rules (higher = handle first); absent from old producers.
    priority: int | None = Field(default=None, ge=0, le=100)
    # Version of the allegation taxonomy the categories were checked against.
    taxonomy_version: str | None = None
    # Entered after the fact from a paper ledger (补录): registered_at is the paper date, and
    # deadlines already past due wait for the rest of the entry before they are judged.
    back_entered: bool = False

    def subject_id(self) -> str | None:
        """The clue this event is about."""
        return self.clue_id


class ReportAccepted(IntegrationEvent):
    """A report was accepted (受理); its clue goes on to disposal."""

    event_type: ClassVar[str] = "xiezuo.intake.report_accepted.v1"
    topic: ClassVar[str] = REPORTS_TOPIC

    report_id: str
    clue_id: str
    decided_by: str
    decided_at: datetime

    def subject_id(self) -> str | None:
        """The report decided."""
        return self.report_id


class ReportRejected(IntegrationEvent):
    """A report was not accepted; the reporter is told the reason through the receipt."""

    event_type: ClassVar[str] = "xiezuo.intake.report_rejected.v1"
    topic: ClassVar[str] = REPORTS_TOPIC

    report_id: str
    clue_id: str
    # court_matter, other_agency or no_substance.
    ground: str
    reason: str
    decided_by: str
    decided_at: datetime

    def subject_id(self) -> str | None:
        """The report decided."""
        return self.report_id


class ReportForwarded(IntegrationEvent):
    """A wrong-level report was forwarded to the body managing the subject (转办)."""

    event_type: ClassVar[str] = "xiezuo.intake.report_forwarded.v1"
    topic: ClassVar[str] = REPORTS_TOPIC

    report_id: str
    # "" when forwarded at reception: such a report never becomes a clue of this county.
    clue_id: str
    forward_to_body: str
    reason: str
    forward_due_at: datetime
    # Whether it went out within the working-day limit of the rules in force.
    within_limit: bool
    decided_by: str
    decided_at: datetime

    def subject_id(self) -> str | None:
        """The report forwarded."""
        return self.report_id


class FeedbackDeadlineBreached(IntegrationEvent):
    """A real-name reporter was not told in time (published once per report and kind)."""

    event_type: ClassVar[str] = "xiezuo.intake.feedback_deadline_breached.v1"
    topic: ClassVar[str] = REPORTS_TOPIC

    report_id: str
    clue_id: str
    due_at: datetime
    detected_at: datetime
    rules_version: str
    # Which feedback was late: "acceptance" (受理) or "result" (after the clue's closure).
    kind: str = "acceptance"

    def subject_id(self) -> str | None:
        """The report concerned."""
        return self.report_id


class ReportLinked(IntegrationEvent):
    """A repeated report joined an existing clue instead of opening a new one (重复举报)."""

    event_type: ClassVar[str] = "xiezuo.intake.report_linked.v1"
    # On the clue stream, keyed by zone like ClueRegistered, so it arrives after the clue.
    topic: ClassVar[str] = CLUES_TOPIC

    report_id: str
    clue_id: str
    township_id: str
    channel: str
    allegation_categories: list[str] = Field(min_length=1)
    real_name: bool
    received_at: datetime
    linked_at: datetime
    # How many reports the clue now carries besides the first, and its raised triage score.
    repeat_count: int = Field(ge=1)
    priority: int = Field(ge=0, le=100)
    # "fingerprint" (automatic, within the rules' window) or "officer" (a near-duplicate).
    linked_by: str
    # When an officer links a near-duplicate that had opened its own clue: that clue is now
    # part of `clue_id` and should be closed as a duplicate by its holder.
    superseded_clue_id: str | None = None
    rules_version: str

    def subject_id(self) -> str | None:
        """The report linked (the clue's own events keep the clue as their subject)."""
        return self.report_id


class ResultFeedbackGiven(IntegrationEvent):
    """An officer told the reporter the result of a concluded report (no identity, no text)."""

    event_type: ClassVar[str] = "xiezuo.intake.result_feedback_given.v1"
    topic: ClassVar[str] = REPORTS_TOPIC

    report_id: str
    clue_id: str
    given_by: str
    given_at: datetime
    # None when nothing was owed (an anonymous reporter, or closed before this was tracked).
    due_at: datetime | None = None
    # Whether it was told within the working-day limit (true when nothing was owed).
    within_limit: bool
    rules_version: str

    def subject_id(self) -> str | None:
        """The report concerned."""
        return self.report_id
