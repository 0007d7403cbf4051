"""What this deployment applied of each record from another county: its id and its digest.

A record delivered again byte for byte (at-least-once: a retried produce, a restarted mirror)
is acknowledged and changes nothing; another record under an id already applied is a replay.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, String
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.runtime.envelope import Envelope


class ReceivedRecordRow(SQLModel, table=True):
    """One applied cross-county record (only its id and a digest; the content is elsewhere)."""

    __tablename__ = "collaboration_received_record"

    event_id: str = Field(sa_column=Column(String(64), primary_key=True))
    digest: str = Field(sa_column=Column(String(64), nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def digest(envelope: Envelope) -> str:
    """SHA-256 over what the sender signed (type, source, subject) and the payload's bytes.

    The payload carries the signature, so a record re-signed or altered in any byte differs.
    """
    parts = (envelope.type, envelope.source, envelope.subject or "")
    hashed = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        hashed.update(len(encoded).to_bytes(4, "big") + encoded)
    hashed.update(envelope.data)
    return hashed.hexdigest()


class ReceivedRecords:
    """The ledger the consumer asks before dead-lettering an id it has seen (RecordLedger)."""

    async def remember(self, session: AsyncSession, envelope: Envelope) -> None:
        """Note the record applied, in the transaction that applied it."""
        session.add(
            ReceivedRecordRow(
                event_id=envelope.id, digest=digest(envelope), received_at=datetime.now(UTC)
            )
        )

    async def is_redelivery(self, session: AsyncSession, envelope: Envelope) -> bool:
        """Whether the record applied under this id was this very record."""
        row = await session.get(ReceivedRecordRow, envelope.id)
        return row is not None and row.digest == digest(envelope)
