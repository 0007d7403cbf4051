"""Transfers sent and received per county, and the sending county's outcome trail.

The trail holds only what the receiving county sends back: the stage, the kind of decision and
when. Never a name, a sanction's detail or the reasoning.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Column, DateTime, Index, Integer, String
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

Direction = Literal["sent", "received"]


class TransferRow(SQLModel, table=True):
    """One county's side of a transfer or designation (the transfer id is the clue id there)."""

    __tablename__ = "collaboration_transfer"

    county_id: str = Field(sa_column=Column(String(64), primary_key=True))
    transfer_id: str = Field(sa_column=Column(String(64), primary_key=True))
    direction: str = Field(sa_column=Column(String(16), nullable=False))
    # The receiving county on the sent side, the sending county on the received side.
    other_county: str = Field(sa_column=Column(String(64), nullable=False))
    mode: str = Field(sa_column=Column(String(16), nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class TransferStepRow(SQLModel, table=True):
    """A step of a sent clue in the receiving county, as that county reported it."""

    __tablename__ = "collaboration_transfer_step"
    __table_args__ = (Index("ix_collaboration_transfer_step_transfer", "county_id", "transfer_id"),)

    seq: int | None = Field(
        default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True)
    )
    county_id: str = Field(sa_column=Column(String(64), nullable=False))
    transfer_id: str = Field(sa_column=Column(String(64), nullable=False))
    stage: str = Field(sa_column=Column(String(40), nullable=False))
    decision: str = Field(sa_column=Column(String(40), nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def remember(
    session: AsyncSession,
    *,
    county_id: str,
    transfer_id: str,
    direction: Direction,
    other_county: str,
    mode: str,
    at: datetime,
) -> None:
    """Record this county's side of a transfer."""
    session.add(
        TransferRow(
            county_id=county_id,
            transfer_id=transfer_id,
            direction=direction,
            other_county=other_county,
            mode=mode,
            at=at,
        )
    )


async def side(
    session: AsyncSession, county_id: str, transfer_id: str, direction: Direction
) -> TransferRow | None:
    """This county's side of the transfer, if it sent (or received) it."""
    row = await session.get(TransferRow, (county_id, transfer_id))
    return row if row is not None and row.direction == direction else None


async def sent(session: AsyncSession, transfer_id: str) -> TransferRow | None:
    """The sent side of a transfer, whichever county sent it."""
    query = select(TransferRow).where(
        col(TransferRow.transfer_id) == transfer_id, col(TransferRow.direction) == "sent"
    )
    return (await session.exec(query)).first()


async def trail(session: AsyncSession, county_id: str, transfer_id: str) -> list[TransferStepRow]:
    """The outcome steps the receiving county reported, in the order they arrived."""
    query = (
        select(TransferStepRow)
        .where(
            col(TransferStepRow.county_id) == county_id,
            col(TransferStepRow.transfer_id) == transfer_id,
        )
        .order_by(col(TransferStepRow.seq))
    )
    return list((await session.exec(query)).all())
