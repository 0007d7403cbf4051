"""Staffing's tables: the registry, conflicts, recusals, draws and assignments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


class ZoneRow(SQLModel, table=True):
    """A collaboration zone."""

    __tablename__ = "staffing_zone"

    zone_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    chief_id: str | None = Field(default=None, sa_column=Column(String(64)))
    deputy_id: str | None = Field(default=None, sa_column=Column(String(64)))


class TownshipRow(SQLModel, table=True):
    """A township and the zone it is placed in."""

    __tablename__ = "staffing_township"

    township_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    effective_from: date = Field(sa_column=Column(Date, nullable=False))


class VillageRow(SQLModel, table=True):
    """A village of a township."""

    __tablename__ = "staffing_village"

    village_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))


class PersonRow(SQLModel, table=True):
    """A person on the register (roles and skills as JSON lists)."""

    __tablename__ = "staffing_person"
    __table_args__ = (Index("ix_staffing_person_scope", "county_id", "zone_id", "person_id"),)

    person_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str | None = Field(default=None, sa_column=Column(String(64)))
    home_township_id: str | None = Field(default=None, sa_column=Column(String(64)))
    village_id: str | None = Field(default=None, sa_column=Column(String(64)))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    roles: str = Field(sa_column=Column(Text, nullable=False))
    skills: str = Field(sa_column=Column(Text, nullable=False))
    workload_cap: int = Field(sa_column=Column(Integer, nullable=False))
    informant: bool = Field(sa_column=Column(Boolean, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class PersonStatusRow(SQLModel, table=True):
    """A dated status period (on leave, in training) of a person."""

    __tablename__ = "staffing_person_status"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    person_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    start: date = Field(sa_column=Column(Date, nullable=False))
    end: date | None = Field(default=None, sa_column=Column(Date))


class ConflictRow(SQLModel, table=True):
    """A declared conflict of a person with a party (by its stable key)."""

    __tablename__ = "staffing_conflict"
    __table_args__ = (Index("ix_staffing_conflict_party", "county_id", "party_key"),)

    conflict_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    person_id: str = Field(sa_column=Column(String(64), nullable=False))
    party_key: str = Field(sa_column=Column(String(128), nullable=False))
    relation: str = Field(sa_column=Column(String(64), nullable=False))
    valid_from: date = Field(sa_column=Column(Date, nullable=False))
    valid_until: date | None = Field(default=None, sa_column=Column(Date))
    declared_by: str = Field(sa_column=Column(String(128), nullable=False))
    declared_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RecusalRow(SQLModel, table=True):
    """A recusal request and, once decided, its decision."""

    __tablename__ = "staffing_recusal"
    __table_args__ = (Index("ix_staffing_recusal_case", "case_id", "person_id"),)

    recusal_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    person_id: str = Field(sa_column=Column(String(64), nullable=False))
    ground: str = Field(sa_column=Column(String(64), nullable=False))
    raised_by: str = Field(sa_column=Column(String(32), nullable=False))
    state: str = Field(sa_column=Column(String(32), nullable=False))
    requested_by: str = Field(sa_column=Column(String(128), nullable=False))
    requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    decided_by: str | None = Field(default=None, sa_column=Column(String(128)))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class DrawRow(SQLModel, table=True):
    """One recorded draw (round 0 answers the request; later rounds are recorded redraws)."""

    __tablename__ = "staffing_draw"
    __table_args__ = (
        # Redelivery or a second consumer can never draw the same request round twice.
        UniqueConstraint("request_id", "round", name="uq_staffing_draw_request_round"),
        # The county's draws form one hash chain: two draws cannot extend the same link.
        UniqueConstraint("county_id", "previous_hash", name="uq_staffing_draw_chain"),
        Index("ix_staffing_draw_case", "case_id"),
    )

    draw_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    request_id: str = Field(sa_column=Column(String(128), nullable=False))
    round: int = Field(sa_column=Column(Integer, nullable=False))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    stage: str = Field(sa_column=Column(String(32), nullable=False))
    cause: str = Field(sa_column=Column(String(32), nullable=False))
    filled: bool = Field(sa_column=Column(Boolean, nullable=False))
    previous_hash: str = Field(sa_column=Column(String(64), nullable=False))
    record_hash: str = Field(sa_column=Column(String(64), nullable=False))
    record: str = Field(sa_column=Column(Text, nullable=False))
    drawn_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class DrawChainHead(SQLModel, table=True):
    """The newest draw of a county: the next draw's seed chains from its hash."""

    __tablename__ = "staffing_draw_chain_head"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    last_hash: str = Field(sa_column=Column(String(64), nullable=False))
    draws: int = Field(sa_column=Column(Integer, nullable=False))


class AssignmentRow(SQLModel, table=True):
    """A person on a team: open assignments are that person's workload."""

    __tablename__ = "staffing_assignment"
    __table_args__ = (
        Index("ix_staffing_assignment_person", "person_id", "state"),
        Index("ix_staffing_assignment_case", "case_id"),
    )

    assignment_id: str = Field(sa_column=Column(String(64), primary_key=True))
    draw_id: str = Field(sa_column=Column(String(64), nullable=False))
    request_id: str = Field(sa_column=Column(String(128), nullable=False))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    case_id: str = Field(sa_column=Column(String(64), nullable=False))
    stage: str = Field(sa_column=Column(String(32), nullable=False))
    person_id: str = Field(sa_column=Column(String(64), nullable=False))
    leader: bool = Field(sa_column=Column(Boolean, nullable=False))
    state: str = Field(sa_column=Column(String(32), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
