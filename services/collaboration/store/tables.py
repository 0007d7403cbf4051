"""Collaboration's tables: network versions, letters (one row per county side), idempotency."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel


class NetworkVersionRow(SQLModel, table=True):
    """One imported version of the network file; the highest version is in force."""

    __tablename__ = "collaboration_network"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    network_id: str = Field(sa_column=Column(String(64), nullable=False))
    # The parsed network (domain.network.Network.to_json): keys, calendars, agreements.
    body: str = Field(sa_column=Column(Text, nullable=False))
    source_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    imported_by: str = Field(sa_column=Column(String(128), nullable=False))
    imported_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LetterRow(SQLModel, table=True):
    """One county's side of an assistance letter (the asking side holds the case reference)."""

    __tablename__ = "collaboration_letter"
    __table_args__ = (
        Index(
            "ix_collaboration_letter_list", "county_id", "direction", "requested_at", "letter_id"
        ),
        Index("ix_collaboration_letter_id", "letter_id"),
        Index("ix_collaboration_letter_due", "due_date"),
    )

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    letter_id: str = Field(sa_column=Column(String(64), primary_key=True))
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    counterpart_county: str = Field(sa_column=Column(String(64), nullable=False))
    # Outbound only: the case it was asked from and its zone. Never sent to the other county.
    case_id: str | None = Field(default=None, sa_column=Column(String(64)))
    zone_id: str | None = Field(default=None, sa_column=Column(String(64)))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    allowlist_version: int = Field(sa_column=Column(Integer, nullable=False))
    network_version: int = Field(sa_column=Column(Integer, nullable=False))
    question: str = Field(sa_column=Column(Text, nullable=False))
    fields_json: str = Field(sa_column=Column(Text, nullable=False))
    excerpt: str = Field(sa_column=Column(Text, nullable=False))
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    state: str = Field(sa_column=Column(String(32), nullable=False))
    requested_by: str | None = Field(default=None, sa_column=Column(String(128)))
    requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    approved_by: str | None = Field(default=None, sa_column=Column(String(128)))
    approved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    decided_by: str | None = Field(default=None, sa_column=Column(String(128)))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    decline_ground: str | None = Field(default=None, sa_column=Column(Text))
    answered_by: str | None = Field(default=None, sa_column=Column(String(128)))
    answered_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    findings: str | None = Field(default=None, sa_column=Column(Text))
    attachments_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    # Set once by the due-date scan, with the notice it published (one of each per side).
    reminded_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    overdue_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # Asked side: the draw of this county's staffing for the accepted letter, and its result
    # ({"members": [person ids, leader first], "reasons": [why unfillable]}).
    team_draw_id: str | None = Field(default=None, sa_column=Column(String(64)))
    team_json: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class IdempotencyRow(SQLModel, table=True):
    """A command already applied under a caller's idempotency key, and the letter it touched."""

    __tablename__ = "collaboration_idempotency"

    key_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    call: str = Field(sa_column=Column(String(64), nullable=False))
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    result_id: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
