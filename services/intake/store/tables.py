"""Intake's tables: reports and the sealed reporter identities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class ReportRow(SQLModel, table=True):
    """One received report and the clue it registered."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("county_id", "idempotency_key"),)

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    clue_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_id: str = Field(sa_column=Column(String(64), nullable=False))
    idempotency_key: str = Field(sa_column=Column(String(128), nullable=False))
    request_fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    channel: str = Field(sa_column=Column(String(32), nullable=False))
    subject_name: str = Field(sa_column=Column(String(200), nullable=False))
    subject_post: str = Field(sa_column=Column(String(200), nullable=False))
    subject_unit: str = Field(sa_column=Column(String(200), nullable=False))
    subject_township_id: str = Field(sa_column=Column(String(64), nullable=False))
    subject_village: str = Field(sa_column=Column(String(200), nullable=False))
    subject_cadre_level: str = Field(sa_column=Column(String(32), nullable=False))
    allegation_categories: str = Field(sa_column=Column(Text, nullable=False))
    campaign_id: str | None = Field(default=None, sa_column=Column(String(64)))
    real_name: bool = Field(sa_column=Column(Boolean, nullable=False))
    # The report's text is sealed like the identity: it must never reach the person reported.
    content_kek_id: str = Field(sa_column=Column(String(32), nullable=False))
    content_wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    receipt_hash: str = Field(sa_column=Column(String(200), nullable=False))
    submitted_by: str = Field(sa_column=Column(String(128), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SealedIdentityRow(SQLModel, table=True):
    """A real-name reporter's identity, encrypted under a per-record data key."""

    __tablename__ = "reporter_identity"

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kek_id: str = Field(sa_column=Column(String(32), nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
