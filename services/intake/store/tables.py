"""Intake's tables: reports and the sealed reporter identities."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


class ReportRow(SQLModel, table=True):
    """One received report and the clue it registered."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("county_id", "idempotency_key"),)

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # Shared by every report linked to the same clue (duplicates).
    clue_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
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
    # `hmac-sha256$<key id>$<hex>` (looked up by equality) or a legacy `scrypt$...` hash.
    receipt_hash: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    submitted_by: str = Field(sa_column=Column(String(128), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # Clear look-up bucket of a legacy (scrypt) receipt only; keyed receipts keep none.
    receipt_prefix: str | None = Field(default=None, sa_column=Column(String(8)))
    taxonomy_version: str | None = Field(default=None, sa_column=Column(String(64)))
    rules_version: str | None = Field(default=None, sa_column=Column(String(64)))
    status: str = Field(default="received", sa_column=Column(String(32), nullable=False))
    # Told to the reporter with the status (rejection reason, forwarded-to body).
    status_note: str = Field(default="", sa_column=Column(Text, nullable=False))
    forward_due_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    feedback_due_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    feedback_given_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    feedback_breach_published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    # Back-entry (补录): the feedback scans leave the report alone until then, so the office
    # can enter the decision that met a deadline already past on paper.
    scan_after: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # The result half of real-name feedback: due within working days of the clue's closure.
    result_due_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    result_given_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    result_breach_published_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )
    # When the clue's handling concluded (the step's own time): a result is told after it.
    concluded_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    decided_by: str | None = Field(default=None, sa_column=Column(String(128)))
    # Digest of the normalised subject, unit, township and categories (duplicate detection).
    duplicate_fingerprint: str | None = Field(default=None, sa_column=Column(String(64)))
    # Set when the report joined an existing clue instead of opening its own.
    linked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ClueLedgerRow(SQLModel, table=True):
    """A clue intake registered: its reports' count, priority and what cases told of it."""

    __tablename__ = "intake_clue"

    clue_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    first_report_id: str = Field(sa_column=Column(String(64), nullable=False))
    registered_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    repeat_count: int = Field(sa_column=Column(Integer, nullable=False))
    priority: int = Field(sa_column=Column(Integer, nullable=False))
    # "" until cases reports progress, then in_progress or concluded.
    progress: str = Field(sa_column=Column(String(32), nullable=False))
    progress_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class TownshipGateRow(SQLModel, table=True):
    """Taken first by every submission on a township, so duplicate matching sees the last one."""

    __tablename__ = "intake_township_gate"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    township_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # Counts submissions; the write is what matters (it holds the row until commit).
    submissions: int = Field(sa_column=Column(BigInteger, nullable=False))


class ReportMatchKeyRow(SQLModel, table=True):
    """One key under which duplicate matching finds a report (its name and one-edit variants).

    The key digests county, township and a variant of the normalised subject name, so a new
    report reads only the few reports whose names are within one edit of its own.
    """

    __tablename__ = "report_match_key"
    __table_args__ = (Index("ix_report_match_key_key_received", "match_key", "received_at"),)

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    match_key: str = Field(sa_column=Column(String(32), primary_key=True))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class DuplicateCandidateRow(SQLModel, table=True):
    """A near-duplicate flagged for an officer: link to the similar clue or keep separate."""

    __tablename__ = "duplicate_candidate"
    __table_args__ = (UniqueConstraint("report_id", "similar_clue_id"),)

    candidate_id: str = Field(sa_column=Column(String(64), primary_key=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    report_id: str = Field(sa_column=Column(String(64), nullable=False))
    clue_id: str = Field(sa_column=Column(String(64), nullable=False))
    similar_report_id: str = Field(sa_column=Column(String(64), nullable=False))
    similar_clue_id: str = Field(sa_column=Column(String(64), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    flagged_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # pending, linked or kept_separate.
    state: str = Field(sa_column=Column(String(16), nullable=False))
    decided_by: str | None = Field(default=None, sa_column=Column(String(128)))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    decision_reason: str | None = Field(default=None, sa_column=Column(Text))


class TownshipPlacementRow(SQLModel, table=True):
    """Intake's copy of staffing's registry: a township's zone from a date on."""

    __tablename__ = "township_placement"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    township_id: str = Field(sa_column=Column(String(64), primary_key=True))
    effective_from: date = Field(sa_column=Column(Date, primary_key=True))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    township_name: str = Field(sa_column=Column(String(200), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SealedIdentityRow(SQLModel, table=True):
    """A real-name reporter's identity, encrypted under a per-record data key."""

    __tablename__ = "reporter_identity"

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kek_id: str = Field(sa_column=Column(String(32), nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SealedChannelDetailRow(SQLModel, table=True):
    """A report's channel details (informant id, forwarding reference...), sealed."""

    __tablename__ = "report_channel_detail"

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    kek_id: str = Field(sa_column=Column(String(32), nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AttachmentRow(SQLModel, table=True):
    """Metadata of one piece of evidence of a report (or of information added later)."""

    __tablename__ = "report_attachment"

    report_id: str = Field(sa_column=Column(String(64), primary_key=True))
    position: int = Field(sa_column=Column(Integer, primary_key=True))
    information_id: str | None = Field(default=None, sa_column=Column(String(64)))
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    media_type: str = Field(sa_column=Column(String(128), nullable=False))


class ReceiptFailureRow(SQLModel, table=True):
    """One failed receipt look-up, counted against a prefix or a caller."""

    __tablename__ = "receipt_failure"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    scope: str = Field(sa_column=Column(String(200), nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ReceiptLockoutRow(SQLModel, table=True):
    """A prefix or caller locked out of receipt look-ups until `locked_until`."""

    __tablename__ = "receipt_lockout"

    scope: str = Field(sa_column=Column(String(200), primary_key=True))
    locked_until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ReporterMessageRow(SQLModel, table=True):
    """One message (or added information) on a report's reporter channel, sealed."""

    __tablename__ = "reporter_message"
    __table_args__ = (
        UniqueConstraint("report_id", "seq"),
        UniqueConstraint("report_id", "author", "idempotency_key"),
    )

    message_id: str = Field(sa_column=Column(String(64), primary_key=True))
    report_id: str = Field(sa_column=Column(String(64), nullable=False))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    author: str = Field(sa_column=Column(String(16), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    idempotency_key: str = Field(sa_column=Column(String(128), nullable=False))
    sent_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    kek_id: str = Field(sa_column=Column(String(32), nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RevealRequestRow(SQLModel, table=True):
    """A request to read a real-name reporter's identity, and its decision."""

    __tablename__ = "reveal_request"
    __table_args__ = (UniqueConstraint("requested_by", "idempotency_key"),)

    reveal_request_id: str = Field(sa_column=Column(String(64), primary_key=True))
    report_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    requested_by: str = Field(sa_column=Column(String(128), nullable=False))
    idempotency_key: str = Field(sa_column=Column(String(128), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    requested_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    decided_by: str | None = Field(default=None, sa_column=Column(String(128)))
    decision_reason: str | None = Field(default=None, sa_column=Column(Text))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revealed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
