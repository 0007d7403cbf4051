"""TownshipPlaced → intake's local registry copy, which routes reports to zones."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.staffing import TownshipPlaced
from services.intake.store.townships import record_placement
from services.runtime.envelope import Envelope


async def on_township_placed(
    session: AsyncSession, event: TownshipPlaced, envelope: Envelope
) -> None:
    """Apply the placement in the consumer's transaction."""
    await record_placement(session, event)
