"""Each county's side of a joint case: its own case id and township, both shares of the team."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession


class JointCaseRow(SQLModel, table=True):
    """One county's side of a joint investigation (the other county's case id is never here).

    The city commission keeps a row of its own (role "city") for the joint cases it opened:
    `other_county` and `second_county` are the two counties, no case and no team.
    """

    __tablename__ = "collaboration_joint_case"
    __table_args__ = (Index("ix_collaboration_joint_case_draw", "county_id", "draw_key"),)

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    joint_id: str = Field(sa_column=Column(String(64), primary_key=True))
    # "opener" (the county that opened it), "partner" (a county asked to join) or "city".
    role: str = Field(sa_column=Column(String(16), nullable=False))
    other_county: str = Field(sa_column=Column(String(64), nullable=False))
    # This county's own case and subject's township; the partner's side holds them once accepted.
    case_id: str | None = Field(default=None, sa_column=Column(String(64)))
    subject_township_id: str | None = Field(default=None, sa_column=Column(String(64)))
    # The letter id this county's staffing draws its share under (unique per county side).
    draw_key: str = Field(sa_column=Column(String(64), nullable=False))
    # opened → accepted | declined → closed (opener); received → accepted | declined → closed.
    state: str = Field(sa_column=Column(String(16), nullable=False))
    # JSON lists of person ids; "" until the share is drawn (an unfillable share is "[]").
    own_members: str = Field(default="", sa_column=Column(Text, nullable=False))
    other_members: str = Field(default="", sa_column=Column(Text, nullable=False))
    opened_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The kind of investigation (domain.joint_case.JointKind); None on rows from before kinds.
    kind: str | None = Field(default=None, sa_column=Column(String(32)))
    # People this county draws, and the other county draws, as the opener asked.
    own_share: int = Field(default=2, sa_column=Column(Integer, nullable=False, server_default="2"))
    other_share: int = Field(
        default=2, sa_column=Column(Integer, nullable=False, server_default="2")
    )
    # Who opened it: a member county or the network's city commission.
    opened_by: str | None = Field(default=None, sa_column=Column(String(64)))
    # The city's row only: the second county of the pair.
    second_county: str | None = Field(default=None, sa_column=Column(String(64)))
    # Whether the other county joined (a city-opened case needs both to join).
    other_joined: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default="0")
    )
    decline_ground: str | None = Field(default=None, sa_column=Column(Text))
    outcome: str | None = Field(default=None, sa_column=Column(String(32)))
    closed_by: str | None = Field(default=None, sa_column=Column(String(64)))
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

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


async def page(
    session: AsyncSession, county_id: str, *, after: str, limit: int, state: str = ""
) -> list[JointCaseRow]:
    """Up to `limit` of the county's joint cases after joint id `after`, by joint id."""
    query = select(JointCaseRow).where(
        JointCaseRow.county_id == county_id, col(JointCaseRow.joint_id) > after
    )
    if state:
        query = query.where(JointCaseRow.state == state)
    rows = await session.exec(query.order_by(col(JointCaseRow.joint_id)).limit(limit))
    return list(rows.all())
