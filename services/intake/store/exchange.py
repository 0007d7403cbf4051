"""The reporter channel: sealed messages both ways and information the reporter adds."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake.domain.channels import Attachment
from services.intake.store.tables import AttachmentRow, ReporterMessageRow, ReportRow
from services.intake.store.vault import Sealed, Vault
from services.runtime import audit
from services.runtime.db import Database

REPORTER, OFFICER, SYSTEM = "reporter", "officer", "system"
MESSAGE, INFORMATION = "message", "information"


@dataclass(frozen=True)
class ChannelMessage:
    """One opened message."""

    message_id: str
    seq: int
    author: str
    kind: str
    body: str
    sent_at: datetime


def _context(report_id: str, message_id: str) -> bytes:
    return f"{report_id}/{message_id}".encode()


async def append_message(
    session: AsyncSession,
    vault: Vault,
    report: ReportRow,
    *,
    author: str,
    kind: str,
    body: str,
    idempotency_key: str,
    now: datetime,
) -> str:
    """Add a sealed message in the caller's transaction; returns its id."""
    last = await session.exec(
        select(func.max(ReporterMessageRow.seq)).where(
            ReporterMessageRow.report_id == report.report_id
        )
    )
    seq = (last.one() or 0) + 1
    message_id = f"msg-{uuid.uuid4().hex}"
    sealed = vault.seal(body.encode(), context=_context(report.report_id, message_id))
    session.add(
        ReporterMessageRow(
            message_id=message_id,
            report_id=report.report_id,
            seq=seq,
            author=author,
            kind=kind,
            idempotency_key=idempotency_key,
            sent_at=now,
            kek_id=sealed.kek_id,
            wrapped_key=sealed.wrapped_key,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
        )
    )
    return message_id


class ReporterChannel:
    """Messages between the commission and a (possibly anonymous) reporter."""

    def __init__(self, database: Database, vault: Vault) -> None:
        self._db = database
        self._vault = vault

    async def send(
        self,
        report: ReportRow,
        *,
        author: str,
        body: str,
        idempotency_key: str,
        actor: str,
        now: datetime,
        attachments: Sequence[Attachment] = (),
        kind: str = MESSAGE,
    ) -> str:
        """Store one message (or information) once per idempotency key; audited."""
        earlier = await self._find(report.report_id, author, idempotency_key)
        if earlier is not None:
            return earlier
        try:
            async with self._db.transaction() as session:
                message_id = await append_message(
                    session,
                    self._vault,
                    report,
                    author=author,
                    kind=kind,
                    body=body,
                    idempotency_key=idempotency_key,
                    now=now,
                )
                await self._attach(session, report.report_id, message_id, attachments)
                await audit.append(
                    session,
                    county_id=report.county_id,
                    actor=actor,
                    action=f"report.{kind}_added",
                    record_type="report",
                    record_id=report.report_id,
                    detail={"message_id": message_id, "author": author},
                    at=now,
                )
        except IntegrityError:
            # A concurrent retry with the same key, or a concurrent message took the seq.
            found = await self._find(report.report_id, author, idempotency_key)
            if found is None:
                raise
            return found
        return message_id

    async def _attach(
        self,
        session: AsyncSession,
        report_id: str,
        message_id: str,
        attachments: Sequence[Attachment],
    ) -> None:
        if not attachments:
            return
        last = await session.exec(
            select(func.max(AttachmentRow.position)).where(AttachmentRow.report_id == report_id)
        )
        start = (last.one() or -1) + 1
        for offset, attachment in enumerate(attachments):
            session.add(
                AttachmentRow(
                    report_id=report_id,
                    position=start + offset,
                    information_id=message_id,
                    sha256=attachment.sha256,
                    size_bytes=attachment.size_bytes,
                    media_type=attachment.media_type,
                )
            )

    async def _find(self, report_id: str, author: str, key: str) -> str | None:
        async with self._db.session() as session:
            query = select(ReporterMessageRow.message_id).where(
                ReporterMessageRow.report_id == report_id,
                ReporterMessageRow.author == author,
                ReporterMessageRow.idempotency_key == key,
            )
            return (await session.exec(query)).first()

    async def read(
        self, report: ReportRow, *, after_seq: int, limit: int, actor: str, now: datetime
    ) -> list[ChannelMessage]:
        """A page of opened messages, oldest first; the read is audited."""
        async with self._db.transaction() as session:
            query = (
                select(ReporterMessageRow)
                .where(
                    ReporterMessageRow.report_id == report.report_id,
                    ReporterMessageRow.seq > after_seq,
                )
                .order_by(col(ReporterMessageRow.seq))
                .limit(limit)
            )
            rows = list((await session.exec(query)).all())
            await audit.append(
                session,
                county_id=report.county_id,
                actor=actor,
                action="report.messages_read",
                record_type="report",
                record_id=report.report_id,
                detail={"count": len(rows)},
                at=now,
            )
        return [self._open(row) for row in rows]

    async def count_from(self, report_id: str, author: str) -> int:
        """How many messages an author has sent on the report."""
        async with self._db.session() as session:
            query = select(func.count()).where(
                ReporterMessageRow.report_id == report_id, ReporterMessageRow.author == author
            )
            return (await session.exec(query)).one()

    def _open(self, row: ReporterMessageRow) -> ChannelMessage:
        sealed = Sealed(row.kek_id, row.wrapped_key, row.nonce, row.ciphertext)
        body = self._vault.open(sealed, context=_context(row.report_id, row.message_id))
        return ChannelMessage(
            row.message_id, row.seq, row.author, row.kind, body.decode(), row.sent_at
        )
