"""Each county's side of a joint case: its own case id and township, both shares of the team."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Column, DateTime, Index, String, Text
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession


class JointCaseRow(SQLModel, table=True):
    """One county's side of a joint investigation (the other county's case id is never here)."""

    __tablename__ = "collaboration_joint_case"
    __table_args__ = (Index("ix_collaboration_joint_case_draw", "county_id", "draw_key"),)

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    joint_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # "opener" (the county that opened it) or "partner" (the county that joined).
    role: str = Field(sa_column=Column(String(16), nullable=False))
    other_county: str = Field(sa_column=Column(String(64), nullable=False))
    # This county's own case and subject's township; the partner's side holds them once accepted.
    case_id: str | None = Field(default=None, sa_column=Column(String(64)))
    subject_township_id: str | None = Field(default=None, sa_column=Column(String(64)))
    # The letter id this county's staffing draws its share under (unique per county side).
    draw_key: str = Field(sa_column=Column(String(64), nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    # JSON lists of person ids; "" until the share is drawn (an unfillable share is "[]").
    own_members: str = Field(default="", sa_column=Column(Text, nullable=False))
    other_members: str = Field(default="", sa_column=Column(Text, nullable=False))
    opened_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))

    def members(self, side: str) -> list[str]:
        """Person ids of `side` ("own" or "other")."""
        text = self.own_members if side == "own" else self.other_members
        return [str(person) for person in json.loads(text)] if text else []


async def get(session: AsyncSession, county_id: str, joint_id: str) -> JointCaseRow | None:
    """The county's side of the joint case, if it has one."""
    return await session.get(JointCaseRow, (county_id, joint_id))


async def by_draw_key(session: AsyncSession, county_id: str, draw_key: str) -> JointCaseRow | None:
    """The joint case whose share this county's staffing drew under `draw_key`."""
    rows = await session.exec(
        select(JointCaseRow).where(
            JointCaseRow.county_id == county_id, JointCaseRow.draw_key == draw_key
        )
    )
    return rows.first()
