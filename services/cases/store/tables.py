"""Cases' tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Index, String, Text
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
