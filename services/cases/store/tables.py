"""Cases' tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel


class ClueRow(SQLModel, table=True):
    """A registered clue and its disposal deadline."""

    __tablename__ = "clue"
    __table_args__ = (Index("ix_clue_scope", "county_id", "zone_id", "clue_id"),)

    clue_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    source_report_id: str = Field(sa_column=Column(String(64), nullable=False))
    channel: str = Field(sa_column=Column(String(32), nullable=False))
    allegation_categories: str = Field(sa_column=Column(Text, nullable=False))
    subject_cadre_level: str = Field(sa_column=Column(String(32), nullable=False))
    real_name: bool = Field(sa_column=Column(Boolean, nullable=False))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    rule_version: str = Field(sa_column=Column(String(64), nullable=False))
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    disposal_due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # Raised by repeated reports (ReportLinked); only ever goes up, so redelivery is harmless.
    priority: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    repeat_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


_SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")


def _utc() -> DateTime:
    return DateTime(timezone=True)


class CaseFileRow(SQLModel, table=True):
    """A clue/case's workflow state (the domain CaseFile as JSON) and its query columns."""

    __tablename__ = "case_file"
    __table_args__ = (Index("ix_case_file_scope", "county_id", "zone_id", "case_id"),)

    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    subject_key: str = Field(sa_column=Column(String(128), nullable=False))
    categories: str = Field(sa_column=Column(Text, nullable=False))
    stage: str = Field(sa_column=Column(String(32), nullable=False))
    rule_version: str = Field(sa_column=Column(String(64), nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(sa_column=Column(_utc(), nullable=False))


class CaseMemberRow(SQLModel, table=True):
    """Who is on which team of a file now (for visibility and the assignee filter)."""

    __tablename__ = "case_member"
    __table_args__ = (Index("ix_case_member_person", "person_id"),)

    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    person_id: str = Field(sa_column=Column(String(64), primary_key=True))
    team: str = Field(sa_column=Column(String(16), primary_key=True))


class CaseJointTownshipRow(SQLModel, table=True):
    """A further township of a joint case (the subject's own is on the file row)."""

    __tablename__ = "case_joint_township"
    __table_args__ = (Index("ix_case_joint_township_township", "township_id"),)

    case_id: str = Field(sa_column=Column(String(64), primary_key=True))
    township_id: str = Field(sa_column=Column(String(64), primary_key=True))


class CaseStepRow(SQLModel, table=True):
    """One transition on the record: who, when, from, to, why."""

    __tablename__ = "case_step"
    __table_args__ = (Index("ix_case_step_case", "case_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(_SEQUENCE, primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    from_stage: str = Field(sa_column=Column(String(32), nullable=False))
    to_stage: str = Field(sa_column=Column(String(32), nullable=False))
    event: str = Field(sa_column=Column(String(64), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    detail: str = Field(sa_column=Column(Text, nullable=False))


class CommandReceiptRow(SQLModel, table=True):
    """A command already applied under an idempotency key: a retry finds it and stops."""

    __tablename__ = "case_command_receipt"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    idempotency_key: str = Field(sa_column=Column(String(128), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    request_digest: str = Field(sa_column=Column(String(64), nullable=False))
    step_id: int = Field(sa_column=Column(BigInteger, nullable=False))


class DeadlineRow(SQLModel, table=True):
    """A running or ended time limit; the deadline scanner reads these, not a timer."""

    __tablename__ = "case_deadline"
    # Running deadlines are found by ix_case_deadline_running (ended_at, warn_at; migration
    # cases_0003): no query filters on status first (cases_0006 dropped that index).
    __table_args__ = (Index("ix_case_deadline_case", "case_id"),)

    deadline_id: str = Field(sa_column=Column(String(128), primary_key=True))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    rule_version: str = Field(sa_column=Column(String(64), nullable=False))
    started_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    due_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    warn_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    extensions: int = Field(sa_column=Column(Integer, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(_utc(), nullable=True))
    # The deadline this one replaced when an extension was granted (None for a first one).
    supersedes: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))


class DeadlineNoticeRow(SQLModel, table=True):
    """A notice sent for a deadline; its key makes each notice fire exactly once."""

    __tablename__ = "case_deadline_notice"

    deadline_id: str = Field(sa_column=Column(String(128), primary_key=True))
    notice: str = Field(sa_column=Column(String(16), primary_key=True))
    due_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    sent_at: datetime = Field(sa_column=Column(_utc(), nullable=False))


class RectificationRow(SQLModel, table=True):
    """A rectification item (整改) the zone follows until its completion is verified."""

    __tablename__ = "case_rectification"
    __table_args__ = (Index("ix_case_rectification_scope", "county_id", "zone_id", "item_id"),)

    item_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    source: str = Field(sa_column=Column(String(32), nullable=False))
    source_ref: str = Field(sa_column=Column(String(256), nullable=False))
    owner_unit: str = Field(sa_column=Column(String(256), nullable=False))
    finding: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    rule_version: str = Field(sa_column=Column(String(64), nullable=False))
    opened_by: str = Field(sa_column=Column(String(128), nullable=False))
    opened_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    due_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    escalated: bool = Field(sa_column=Column(Boolean, nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(_utc(), nullable=True))


class RectificationProgressRow(SQLModel, table=True):
    """A progress report, verification or escalation on a rectification item."""

    __tablename__ = "case_rectification_progress"
    __table_args__ = (Index("ix_case_rectification_progress_item", "item_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(_SEQUENCE, primary_key=True))
    item_id: str = Field(sa_column=Column(String(64), nullable=False))
    at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    percent_done: int = Field(sa_column=Column(Integer, nullable=False))


class RectificationReceiptRow(SQLModel, table=True):
    """A rectification command already applied under an idempotency key."""

    __tablename__ = "case_rectification_receipt"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    idempotency_key: str = Field(sa_column=Column(String(128), primary_key=True))
    item_id: str = Field(sa_column=Column(String(64), nullable=False))
    request_digest: str = Field(sa_column=Column(String(64), nullable=False))


class ClueLinkRow(SQLModel, table=True):
    """A link between clues: a repeated report, a duplicate clue folded in, or related clues."""

    __tablename__ = "case_clue_link"
    __table_args__ = (
        Index("ix_case_clue_link_clue", "clue_id"),
        Index("ix_case_clue_link_other", "other_clue_id"),
    )

    # report:<clue>:<report>, related:<a>:<b> (sorted): the same link is never stored twice.
    link_key: str = Field(sa_column=Column(String(200), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    clue_id: str = Field(sa_column=Column(String(64), nullable=False))
    # The duplicate clue folded into clue_id, or the related clue ("" for a report link).
    other_clue_id: str = Field(sa_column=Column(String(64), nullable=False))
    report_id: str = Field(sa_column=Column(String(64), nullable=False))
    linked_by: str = Field(sa_column=Column(String(128), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=Column(_utc(), nullable=False))
