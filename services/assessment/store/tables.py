"""Assessment's tables: KPI projections, their contributing events, marks, plans."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlmodel import Field, SQLModel


class KpiTally(SQLModel, table=True):
    """One KPI of one unit in one quarter, summed from events (a projection row)."""

    __tablename__ = "kpi_tally"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    quarter: str = Field(sa_column=Column(String(8), primary_key=True))
    level: str = Field(sa_column=Column(String(16), primary_key=True))
    subject_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # In the key: a person or township may be counted in several zones (county-wide pools),
    # and the row must not depend on which zone's event arrived first.
    zone_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kpi: str = Field(sa_column=Column(String(64), primary_key=True))
    value: int = Field(sa_column=Column(BigInteger, nullable=False))


class KpiContribution(SQLModel, table=True):
    """What one event added to one projection row: ExplainScore lists these."""

    __tablename__ = "kpi_contribution"
    __table_args__ = (
        Index("ix_kpi_contribution_row", "county_id", "quarter", "level", "subject_id", "kpi"),
    )

    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    level: str = Field(sa_column=Column(String(16), primary_key=True))
    subject_id: str = Field(sa_column=Column(String(64), primary_key=True))
    zone_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kpi: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    quarter: str = Field(sa_column=Column(String(8), nullable=False))
    delta: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The clue/case the event concerns ("" for none), so an explanation reaches the case file.
    case_id: str = Field(
        default="", sa_column=Column(String(64), nullable=False, server_default="")
    )


class AssessedUnit(SQLModel, table=True):
    """A unit known from the registry, so an idle township still appears in its ranking."""

    __tablename__ = "assessed_unit"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    level: str = Field(sa_column=Column(String(16), primary_key=True))
    subject_id: str = Field(sa_column=Column(String(64), primary_key=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(128), nullable=False))


class QualitativeMark(SQLModel, table=True):
    """An assessor's qualitative mark for a unit and quarter (their latest one counts)."""

    __tablename__ = "qualitative_mark"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    quarter: str = Field(sa_column=Column(String(8), primary_key=True))
    level: str = Field(sa_column=Column(String(16), primary_key=True))
    subject_id: str = Field(sa_column=Column(String(64), primary_key=True))
    assessor: str = Field(sa_column=Column(String(128), primary_key=True))
    points: Decimal = Field(sa_column=Column(Numeric(6, 2), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CommandReceipt(SQLModel, table=True):
    """A command already applied under an idempotency key, and what it answered."""

    __tablename__ = "command_receipt"

    idempotency_key: str = Field(sa_column=Column(String(128), primary_key=True))
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    command: str = Field(sa_column=Column(String(64), nullable=False))
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    result: str = Field(sa_column=Column(Text, nullable=False))


class WorkPlanRow(SQLModel, table=True):
    """A county's work plan for a year; `revision` counts redefinitions."""

    __tablename__ = "work_plan"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    themes: str = Field(sa_column=Column(Text, nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    defined_by: str = Field(sa_column=Column(String(128), nullable=False))
    defined_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class WorkPlanTarget(SQLModel, table=True):
    """One target of a work plan."""

    __tablename__ = "work_plan_target"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    quarter: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    zone_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kpi: str = Field(sa_column=Column(String(64), primary_key=True))
    target: int = Field(sa_column=Column(BigInteger, nullable=False))


class QuarterClose(SQLModel, table=True):
    """A county's quarter was closed and its scorecards published."""

    __tablename__ = "quarter_close"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    quarter: str = Field(sa_column=Column(String(8), primary_key=True))
    rules_version: str = Field(sa_column=Column(String(64), nullable=False))
    published: int = Field(sa_column=Column(Integer, nullable=False))
    closed_by: str = Field(sa_column=Column(String(128), nullable=False))
    closed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CampaignRow(SQLModel, table=True):
    """A special campaign as defined (redefinitions replace it)."""

    __tablename__ = "campaign"

    campaign_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    domain: str = Field(sa_column=Column(String(64), nullable=False))
    starts_on: date = Field(sa_column=Column(Date, nullable=False))
    ends_on: date = Field(sa_column=Column(Date, nullable=False))
    zone_ids: str = Field(sa_column=Column(Text, nullable=False))
    defined_by: str = Field(sa_column=Column(String(128), nullable=False))
    defined_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CampaignClue(SQLModel, table=True):
    """A clue registered under a campaign (from ClueRegistered.campaign_id)."""

    __tablename__ = "campaign_clue"
    __table_args__ = (Index("ix_campaign_clue_campaign", "county_id", "campaign_id"),)

    clue_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    campaign_id: str = Field(sa_column=Column(String(64), nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class CaseMilestone(SQLModel, table=True):
    """A milestone of a clue/case (filed, decided, …), joined to campaigns when read.

    Kept per case rather than per campaign so that the result does not depend on whether the
    clue's registration or the case's step was consumed first (different topics).
    """

    __tablename__ = "case_milestone"

    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    milestone: str = Field(sa_column=Column(String(32), primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AttendanceDay(SQLModel, table=True):
    """The attendance status in force for a person's day (the latest record wins)."""

    __tablename__ = "attendance_day"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    person_id: str = Field(sa_column=Column(String(64), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event_id: str = Field(sa_column=Column(String(64), nullable=False))


class LimitClock(SQLModel, table=True):
    """When a clue's disposal or a case's investigation finished (the latest finish counts)."""

    __tablename__ = "limit_clock"
    __table_args__ = (Index("ix_limit_clock_event", "county_id", "event_id"),)

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    clock: str = Field(sa_column=Column(String(32), primary_key=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    quarter: str = Field(sa_column=Column(String(8), nullable=False))
    finished_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event_id: str = Field(sa_column=Column(String(64), nullable=False))


class LimitBreach(SQLModel, table=True):
    """A breach of a clue's or case's time limit, kept per deadline to judge its clock."""

    __tablename__ = "limit_breach"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    clock: str = Field(sa_column=Column(String(32), primary_key=True))
    deadline_id: str = Field(sa_column=Column(String(64), primary_key=True))
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event_id: str = Field(sa_column=Column(String(64), nullable=False))


class CampaignRectification(SQLModel, table=True):
    """A rectification item opened under a campaign (source "campaign", source_ref its id).

    Opening and closing fill their own columns, so the row is the same in any arrival order.
    """

    __tablename__ = "campaign_rectification"
    __table_args__ = (Index("ix_campaign_rectification", "county_id", "campaign_id"),)

    item_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    campaign_id: str = Field(sa_column=Column(String(256), nullable=False))
    opened_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    closed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    overdue: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))


class FormOutcome(SQLModel, table=True):
    """A step that places a case's subject in one of the four forms (0: none, e.g. cancelled).

    A case belongs to the quarter of its first outcome; a changed appeal (`replaces`) gives it
    a new form there. Kept per step so any arrival order gives the same answer.
    """

    __tablename__ = "form_outcome"
    __table_args__ = (
        Index("ix_form_outcome_quarter", "county_id", "quarter"),
        Index("ix_form_outcome_case", "county_id", "case_id"),
        Index("ix_form_outcome_event", "county_id", "event_id"),
    )

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    quarter: str = Field(sa_column=Column(String(8), nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    form: int = Field(sa_column=Column(Integer, nullable=False))
    # What placed it there: `party:expulsion`, `measure:removal_from_office`, `criticism`, …
    basis: str = Field(sa_column=Column(String(64), nullable=False))
    replaces: bool = Field(sa_column=Column(Boolean, nullable=False))


class CaseSubject(SQLModel, table=True):
    """A case's subject as a name-free key, so one person's cases count as one person."""

    __tablename__ = "case_subject"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    subject_key: str = Field(sa_column=Column(String(64), nullable=False))


class TeamRequest(SQLModel, table=True):
    """When cases asked for a team (the step's own time, also for back-entered steps)."""

    __tablename__ = "team_request"
    __table_args__ = (
        Index("ix_team_request_case", "county_id", "case_id"),
        Index("ix_team_request_quarter", "county_id", "quarter"),
    )

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    request_id: str = Field(sa_column=Column(String(128), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    stage: str = Field(sa_column=Column(String(32), nullable=False))
    requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The quarter a team drawn for it counts in (the step's, also for back-entered steps).
    quarter: str = Field(default="", sa_column=Column(String(8), nullable=False))


class CaseTeam(SQLModel, table=True):
    """A team drawn for a case's stage: `person@home_township` per member, `*` after a leader."""

    __tablename__ = "case_team"
    __table_args__ = (
        Index("ix_case_team_case", "county_id", "case_id"),
        Index("ix_case_team_request", "county_id", "request_id"),
        Index("ix_case_team_quarter", "county_id", "quarter"),
    )

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    request_id: str = Field(sa_column=Column(String(128), nullable=False))
    stage: str = Field(sa_column=Column(String(32), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    members: str = Field(sa_column=Column(Text, nullable=False))
    assigned_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The draw's own quarter: used only while its request has not been consumed.
    quarter: str = Field(default="", sa_column=Column(String(8), nullable=False))


class CaseWorkStep(SQLModel, table=True):
    """A step that ends a team's stage or judges its work (sent back, appeal changed)."""

    __tablename__ = "case_work_step"
    __table_args__ = (
        Index("ix_case_work_step_quarter", "county_id", "quarter"),
        Index("ix_case_work_step_case", "county_id", "case_id"),
        Index("ix_case_work_step_event", "county_id", "event_id"),
    )

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kind: str = Field(sa_column=Column(String(32), primary_key=True))
    quarter: str = Field(sa_column=Column(String(8), nullable=False))
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class UnitName(SQLModel, table=True):
    """A zone's or staff member's display name from the registry (never an informant's)."""

    __tablename__ = "unit_name"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    level: str = Field(sa_column=Column(String(16), primary_key=True))
    subject_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))


class CollaborationLetter(SQLModel, table=True):
    """One county's end of one letter between counties: ids, zone, kind and three moments.

    Never the question, fields, findings or case: only what the KPIs need.
    """

    __tablename__ = "help_letter"
    __table_args__ = (Index("ix_help_letter_county", "county_id"),)

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    letter_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # `asking` (the county sent the letter) or `asked` (it was asked for help).
    side: str = Field(sa_column=Column(String(8), primary_key=True))
    # The asking case's zone once an answer or a breach names it; `*` until then / when asked.
    zone_id: str = Field(default="*", sa_column=Column(String(64), nullable=False))
    kind: str = Field(default="", sa_column=Column(String(32), nullable=False))
    counterpart_county: str = Field(default="", sa_column=Column(String(64), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    sent_quarter: str | None = Field(default=None, sa_column=Column(String(8)))
    sent_event: str | None = Field(default=None, sa_column=Column(String(64)))
    answered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    answered_quarter: str | None = Field(default=None, sa_column=Column(String(8)))
    answered_event: str | None = Field(default=None, sa_column=Column(String(64)))
    overdue_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    overdue_quarter: str | None = Field(default=None, sa_column=Column(String(8)))
    overdue_event: str | None = Field(default=None, sa_column=Column(String(64)))
