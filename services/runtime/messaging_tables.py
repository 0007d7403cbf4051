"""Outbox and inbox tables: every service database has both."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL needs BIGINT for volume.
_SEQUENCE = BigInteger().with_variant(Integer(), "sqlite")


def _utc() -> DateTime:
    return DateTime(timezone=True)


class OutboxMessage(SQLModel, table=True):
    """An event written in the same transaction as the change that implies it."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_unpublished", "published_at", "id"),)

    id: int | None = Field(default=None, sa_column=Column(_SEQUENCE, primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    event_type: str = Field(sa_column=Column(String(200), nullable=False))
    topic: str = Field(sa_column=Column(String(200), nullable=False))
    partition_key: str = Field(sa_column=Column(String(200), nullable=False))
    source: str = Field(sa_column=Column(String(200), nullable=False))
    subject: str | None = Field(default=None, sa_column=Column(String(200)))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    zone_id: str = Field(sa_column=Column(String(64), nullable=False))
    occurred_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    traceparent: str | None = Field(default=None, sa_column=Column(String(64)))
    tracestate: str | None = Field(default=None, sa_column=Column(String(512)))
    # When the row was written (not when the event occurred): the relay backlog's age.
    recorded_at: datetime | None = Field(default=None, sa_column=Column(_utc()))
    published_at: datetime | None = Field(default=None, sa_column=Column(_utc()))
    publish_attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has already applied; a redelivery finds it and changes nothing."""

    __tablename__ = "inbox_entry"

    consumer: str = Field(sa_column=Column(String(100), primary_key=True))
    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    event_type: str = Field(sa_column=Column(String(200), nullable=False))
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    processed_at: datetime = Field(sa_column=Column(_utc(), nullable=False))
