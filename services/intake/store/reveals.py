"""Identity reveal requests: filed, decided by a custodian, read once; all audited."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.intake.domain.report import ReporterIdentity
from services.intake.domain.reveal import RevealState, check_decision, check_read
from services.intake.store.tables import ReportRow, RevealRequestRow, SealedIdentityRow
from services.intake.store.vault import Sealed, Vault
from services.runtime import audit
from services.runtime.db import Database


class NoIdentity(Exception):
    """The report is anonymous: there is nothing to reveal."""


@dataclass(frozen=True)
class RevealScope:
    """Where a reveal request's report lives, for the policy."""

    reveal_request_id: str
    county_id: str
    zone_id: str
    requested_by: str
    state: RevealState


class RevealDesk:
    """The custodian's desk: requests, decisions and the single read each approval allows."""

    def __init__(self, database: Database, vault: Vault) -> None:
        self._db = database
        self._vault = vault

    async def file(
        self, report: ReportRow, *, officer: str, reason: str, idempotency_key: str, now: datetime
    ) -> str:
        """File (once per key) a request to read the reporter's identity."""
        if not report.real_name:
            raise NoIdentity(f"report {report.report_id} is anonymous")
        earlier = await self._by_key(officer, idempotency_key)
        if earlier is not None:
            return earlier
        request_id = f"rvl-{uuid.uuid4().hex}"
        try:
            async with self._db.transaction() as session:
                session.add(
                    RevealRequestRow(
                        reveal_request_id=request_id,
                        report_id=report.report_id,
                        county_id=report.county_id,
                        zone_id=report.zone_id,
                        requested_by=officer,
                        idempotency_key=idempotency_key,
                        reason=reason,
                        requested_at=now,
                        state=RevealState.PENDING.value,
                    )
                )
                await audit.append(
                    session,
                    county_id=report.county_id,
                    actor=officer,
                    action="identity.reveal_requested",
                    record_type="report",
                    record_id=report.report_id,
                    detail={"reveal_request_id": request_id, "reason": reason},
                    at=now,
                )
        except IntegrityError:
            found = await self._by_key(officer, idempotency_key)
            if found is None:
                raise
            return found
        return request_id

    async def scope(self, request_id: str) -> RevealScope | None:
        """The request's scope, or None when there is no such request."""
        async with self._db.session() as session:
            row = await session.get(RevealRequestRow, request_id)
        if row is None:
            return None
        return RevealScope(
            row.reveal_request_id,
            row.county_id,
            row.zone_id,
            row.requested_by,
            RevealState(row.state),
        )

    async def decide(
        self, request_id: str, *, custodian: str, approve: bool, reason: str, now: datetime
    ) -> None:
        """Approve or refuse a pending request; RevealRefused when the rules forbid it."""
        async with self._db.transaction() as session:
            row = await session.get(RevealRequestRow, request_id, with_for_update=True)
            if row is None:
                raise LookupError(request_id)
            check_decision(
                state=RevealState(row.state), requested_by=row.requested_by, custodian=custodian
            )
            row.state = (RevealState.APPROVED if approve else RevealState.REFUSED).value
            row.decided_by, row.decision_reason, row.decided_at = custodian, reason, now
            session.add(row)
            await audit.append(
                session,
                county_id=row.county_id,
                actor=custodian,
                action="identity.reveal_approved" if approve else "identity.reveal_refused",
                record_type="report",
                record_id=row.report_id,
                detail={"reveal_request_id": request_id, "reason": reason},
                at=now,
            )

    async def reveal(self, request_id: str, *, reader: str, now: datetime) -> ReporterIdentity:
        """Open the identity once for the requester of an approved request."""
        async with self._db.transaction() as session:
            row = await session.get(RevealRequestRow, request_id, with_for_update=True)
            if row is None:
                raise LookupError(request_id)
            check_read(state=RevealState(row.state), requested_by=row.requested_by, reader=reader)
            # Conditional update: of two concurrent reads only one finds it still approved.
            used = await session.exec(
                update(RevealRequestRow)
                .where(
                    col(RevealRequestRow.reveal_request_id) == request_id,
                    col(RevealRequestRow.state) == RevealState.APPROVED.value,
                )
                .values(state=RevealState.USED.value, revealed_at=now)
            )
            if used.rowcount != 1:
                check_read(state=RevealState.USED, requested_by=row.requested_by, reader=reader)
            sealed_row = await session.get(SealedIdentityRow, row.report_id)
            if sealed_row is None:
                raise NoIdentity(f"report {row.report_id} has no sealed identity")
            await audit.append(
                session,
                county_id=row.county_id,
                actor=reader,
                action="identity.revealed",
                record_type="report",
                record_id=row.report_id,
                detail={"reveal_request_id": request_id},
                at=now,
            )
            sealed = Sealed(
                sealed_row.kek_id, sealed_row.wrapped_key, sealed_row.nonce, sealed_row.ciphertext
            )
        plain = self._vault.open(sealed, context=row.report_id.encode())
        return ReporterIdentity(**json.loads(plain))

    async def _by_key(self, officer: str, key: str) -> str | None:
        async with self._db.session() as session:
            query = select(RevealRequestRow.reveal_request_id).where(
                RevealRequestRow.requested_by == officer,
                RevealRequestRow.idempotency_key == key,
            )
            return (await session.exec(query)).first()
