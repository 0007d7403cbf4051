"""Receipt look-ups: find a report by its code, with failures counted and locked out in the DB."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from services.intake.domain.receipt import receipt_matches, receipt_prefix, well_formed
from services.intake.domain.receipt_guard import (
    GuardScope,
    limit_for,
    lockout_until,
    scopes_of,
    window_start,
)
from services.intake.domain.rulebook import RuleBook
from services.intake.store.tables import ReceiptFailureRow, ReceiptLockoutRow, ReportRow
from services.runtime import audit
from services.runtime.db import Database


@dataclass(frozen=True)
class ReceiptClaim:
    """What a receipt call presents."""

    county_id: str
    receipt_code: str
    caller_ref: str


class ReceiptLockedOut(Exception):
    """Too many failed look-ups from this caller or on this prefix; retry later."""


class ReceiptUnknown(Exception):
    """No report of the county has this receipt code."""


def _caller_key(principal_subject: str, caller_ref: str) -> str:
    # The portal's caller reference is hashed so the audit log and tables hold no address.
    digest = hashlib.sha256(f"{principal_subject}\x00{caller_ref}".encode()).hexdigest()
    return digest[:32]


class ReceiptDesk:
    """Verifies receipt codes against their scrypt hashes, within the guessing limits."""

    def __init__(self, database: Database, rule_book: RuleBook) -> None:
        self._db = database
        self._rule_book = rule_book

    async def find(self, claim: ReceiptClaim, *, actor: str, now: datetime) -> ReportRow:
        """The report the code belongs to; ReceiptLockedOut or ReceiptUnknown otherwise."""
        scopes = scopes_of(
            county_id=claim.county_id,
            prefix=receipt_prefix(claim.receipt_code),
            caller=_caller_key(actor, claim.caller_ref),
        )
        if await self._locked(scopes, now):
            await self._audit(claim, actor=actor, now=now, action="receipt.locked_out")
            raise ReceiptLockedOut("too many failed receipt look-ups; try again later")
        found = await self._match(claim) if well_formed(claim.receipt_code) else None
        if found is None:
            await self._fail(claim, scopes, actor=actor, now=now)
            raise ReceiptUnknown("no report has that receipt code")
        return found

    async def _locked(self, scopes: list[GuardScope], now: datetime) -> bool:
        async with self._db.session() as session:
            query = select(ReceiptLockoutRow).where(
                col(ReceiptLockoutRow.scope).in_([scope.name for scope in scopes]),
                ReceiptLockoutRow.locked_until > now,
            )
            return (await session.exec(query)).first() is not None

    async def _match(self, claim: ReceiptClaim) -> ReportRow | None:
        async with self._db.session() as session:
            query = select(ReportRow).where(
                ReportRow.county_id == claim.county_id,
                ReportRow.receipt_prefix == receipt_prefix(claim.receipt_code),
            )
            candidates = list((await session.exec(query)).all())
        for row in candidates:
            # scrypt is slow on purpose; keep it off the event loop.
            if await asyncio.to_thread(receipt_matches, claim.receipt_code, row.receipt_hash):
                return row
        return None

    async def _fail(
        self, claim: ReceiptClaim, scopes: list[GuardScope], *, actor: str, now: datetime
    ) -> None:
        guard = self._rule_book.rules_on(now.date()).receipt_guard
        locked: list[str] = []
        async with self._db.transaction() as session:
            for scope in scopes:
                session.add(ReceiptFailureRow(scope=scope.name, at=now))
            await session.flush()
            for scope in scopes:
                count_query = select(func.count()).where(
                    ReceiptFailureRow.scope == scope.name,
                    ReceiptFailureRow.at > window_start(now, guard),
                )
                failures = (await session.exec(count_query)).one()
                if failures >= limit_for(scope, guard):
                    locked.append(scope.kind)
                    until = lockout_until(now, guard)
                    existing = await session.get(ReceiptLockoutRow, scope.name)
                    if existing is None:
                        session.add(ReceiptLockoutRow(scope=scope.name, locked_until=until))
                    else:
                        existing.locked_until = until
                        session.add(existing)
            await audit.append(
                session,
                county_id=claim.county_id,
                actor=actor,
                action="receipt.lookup_failed",
                record_type="receipt",
                record_id=scopes[0].name,
                detail={"locked": sorted(locked), "caller": scopes[1].key},
                at=now,
            )

    async def _audit(self, claim: ReceiptClaim, *, actor: str, now: datetime, action: str) -> None:
        async with self._db.transaction() as session:
            await audit.append(
                session,
                county_id=claim.county_id,
                actor=actor,
                action=action,
                record_type="receipt",
                record_id=f"prefix:{claim.county_id}:{receipt_prefix(claim.receipt_code)}",
                detail={},
                at=now,
            )
