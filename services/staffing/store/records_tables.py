"""Staffing's tables for training, attendance, registry history and idempotency keys."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel


class TrainingRow(SQLModel, table=True):
    """One training record of a person (one day of a course)."""

    __tablename__ = "staffing_training"
    __table_args__ = (Index("ix_staffing_training_person", "person_id", "on_date", "record_id"),)

    record_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str | None = Field(default=None, sa_column=Column(String(64)))
    person_id: str = Field(sa_column=Column(String(64), nullable=False))
    course: str = Field(sa_column=Column(String(300), nullable=False))
    training_type: str = Field(sa_column=Column(String(32), nullable=False))
    # Tenths of an hour: exact sums for assessment, no floating point in the ledger.
    hours_tenths: int = Field(sa_column=Column(Integer, nullable=False))
    on_date: date = Field(sa_column=Column(Date, nullable=False))
    recorded_by: str = Field(sa_column=Column(String(128), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AttendanceRow(SQLModel, table=True):
    """A person's attendance on one day (a later record for the day corrects it)."""

    __tablename__ = "staffing_attendance"

    person_id: str = Field(sa_column=Column(String(64), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str | None = Field(default=None, sa_column=Column(String(64)))
    status: str = Field(sa_column=Column(String(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    recorded_by: str = Field(sa_column=Column(String(128), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RegistryChangeRow(SQLModel, table=True):
    """Who changed which registry record, what, and when (append-only)."""

    __tablename__ = "staffing_registry_change"
    __table_args__ = (
        Index("ix_staffing_registry_change_record", "record_type", "record_id", "change_id"),
    )

    change_id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    record_type: str = Field(sa_column=Column(String(32), nullable=False))
    record_id: str = Field(sa_column=Column(String(64), nullable=False))
    action: str = Field(sa_column=Column(String(32), nullable=False))
    # JSON: the names of the fields changed, and the record before and after.
    fields: str = Field(sa_column=Column(Text, nullable=False))
    before: str | None = Field(default=None, sa_column=Column(Text))
    after: str = Field(sa_column=Column(Text, nullable=False))
    changed_by: str = Field(sa_column=Column(String(128), nullable=False))
    changed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class IdempotencyRow(SQLModel, table=True):
    """A command already applied under a caller's idempotency key, and what it produced."""

    __tablename__ = "staffing_idempotency"

    key_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    call: str = Field(sa_column=Column(String(64), nullable=False))
    # sha256 of the request: the same key with a different request is refused.
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    result_id: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
