"""Receipt look-ups: find a report by its code, with guessing throttled through the DB."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake.domain.receipt import (
    ReceiptKeys,
    legacy_receipt_matches,
    receipt_prefix,
    well_formed,
)
from services.intake.domain.receipt_guard import (
    GuardScope,
    lockout_until,
    scopes_of,
    window_start,
)
from services.intake.domain.rulebook import RuleBook
from services.intake.store.tables import ReceiptFailureRow, ReceiptLockoutRow, ReportRow
from services.runtime import audit
from services.runtime.db import Database, as_utc


@dataclass(frozen=True)
class ReceiptClaim:
    """What a receipt call presents."""

    county_id: str
    receipt_code: str
    caller_ref: str


class ReceiptLockedOut(Exception):
    """Too many failed look-ups from this source or in this county; retry later."""


class ReceiptUnknown(Exception):
    """No report of the county has this receipt code."""


def _caller_key(principal_subject: str, caller_ref: str) -> str:
    # The portal's caller reference is hashed so the audit log and tables hold no address.
    digest = hashlib.sha256(f"{principal_subject}\x00{caller_ref}".encode()).hexdigest()
    return digest[:32]


class ReceiptDesk:
    """Finds reports by receipt code (one indexed look-up), within the guessing limits.

    State lives in the database (failure rows and lockouts), so every replica applies the same
    limits. The happy path reads one lockout query and one indexed report query; only a failed
    look-up writes.
    """

    def __init__(self, database: Database, rule_book: RuleBook, keys: ReceiptKeys) -> None:
        self._db = database
        self._rule_book = rule_book
        self._keys = keys

    async def find(self, claim: ReceiptClaim, *, actor: str, now: datetime) -> ReportRow:
        """The report the code belongs to; ReceiptLockedOut or ReceiptUnknown otherwise."""
        scopes = scopes_of(county_id=claim.county_id, caller=_caller_key(actor, claim.caller_ref))
        # Checked before the code is: a refused source learns nothing, right code or not.
        if await self._locked(scopes, now):
            await self._audit_refusal(claim, scopes, actor=actor, now=now)
            raise ReceiptLockedOut("too many failed receipt look-ups; try again later")
        found = await self._match(claim) if well_formed(claim.receipt_code) else None
        if found is None:
            await self._fail(claim, scopes, actor=actor, now=now)
            raise ReceiptUnknown("no report has that receipt code")
        return found

    async def _locked(self, scopes: list[GuardScope], now: datetime) -> bool:
        async with self._db.session() as session:
            query = select(ReceiptLockoutRow.scope).where(
                col(ReceiptLockoutRow.scope).in_([scope.name for scope in scopes]),
                ReceiptLockoutRow.locked_until > now,
            )
            return (await session.exec(query)).first() is not None

    async def _match(self, claim: ReceiptClaim) -> ReportRow | None:
        async with self._db.session() as session:
            # By the hash alone, so the planner takes its index; the county is checked after.
            keyed = select(ReportRow).where(
                col(ReportRow.receipt_hash).in_(self._keys.digests(claim.receipt_code))
            )
            for found in (await session.exec(keyed)).all():
                if found.county_id == claim.county_id:
                    return found
            # Receipts issued before the keyed scheme: only they keep a clear prefix.
            legacy = select(ReportRow).where(
                ReportRow.county_id == claim.county_id,
                ReportRow.receipt_prefix == receipt_prefix(claim.receipt_code),
            )
            candidates = list((await session.exec(legacy)).all())
        for row in candidates:
            # scrypt is slow on purpose; keep it off the event loop.
            if await asyncio.to_thread(
                legacy_receipt_matches, claim.receipt_code, row.receipt_hash
            ):
                return await self._upgrade(row, claim.receipt_code)
        return None

    async def _upgrade(self, row: ReportRow, code: str) -> ReportRow:
        """Re-hash a legacy receipt under the key, so it is never checked with scrypt again."""
        digest = self._keys.digest(code)
        async with self._db.transaction() as session:
            await session.exec(
                update(ReportRow)
                .where(
                    col(ReportRow.report_id) == row.report_id,
                    col(ReportRow.receipt_hash) == row.receipt_hash,
                )
                .values(receipt_hash=digest, receipt_prefix=None)
            )
        row.receipt_hash, row.receipt_prefix = digest, None
        return row

    async def _fail(
        self, claim: ReceiptClaim, scopes: list[GuardScope], *, actor: str, now: datetime
    ) -> None:
        guard = self._rule_book.rules_at(now).receipt_guard
        since = window_start(now, guard)
        locked: list[str] = []
        async with self._db.transaction() as session:
            # What left the window counts no more. Every failure prunes, and the county budget
            # caps failures per window, so both tables stay a window's worth of rows.
            await session.exec(delete(ReceiptFailureRow).where(col(ReceiptFailureRow.at) <= since))
            await session.exec(
                delete(ReceiptLockoutRow).where(col(ReceiptLockoutRow.locked_until) <= now)
            )
            for scope in scopes:
                session.add(ReceiptFailureRow(scope=scope.name, at=now))
            await session.flush()
            for scope in scopes:
                failures_query = select(ReceiptFailureRow.at).where(
                    ReceiptFailureRow.scope == scope.name, col(ReceiptFailureRow.at) > since
                )
                failures = [as_utc(at) for at in (await session.exec(failures_query)).all()]
                until = lockout_until(scope, failures, now, guard)
                if until is None:
                    continue
                locked.append(scope.kind)
                await _lock(session, scope, until)
            await audit.append(
                session,
                county_id=claim.county_id,
                actor=actor,
                action="receipt.lookup_failed",
                record_type="receipt",
                record_id=scopes[0].name,
                detail={"locked": sorted(locked), "caller": scopes[0].key},
                at=now,
            )

    async def _audit_refusal(
        self, claim: ReceiptClaim, scopes: list[GuardScope], *, actor: str, now: datetime
    ) -> None:
        async with self._db.transaction() as session:
            await audit.append(
                session,
                county_id=claim.county_id,
                actor=actor,
                action="receipt.locked_out",
                record_type="receipt",
                record_id=scopes[0].name,
                detail={},
                at=now,
            )


async def _lock(session: AsyncSession, scope: GuardScope, until: datetime) -> None:
    # An upsert: replicas failing on the same county at once must not trip over the key.
    dialect = (await session.connection()).dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ReceiptLockoutRow).values(scope=scope.name, locked_until=until)
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=[col(ReceiptLockoutRow.scope)],
            set_={"locked_until": statement.excluded.locked_until},
        )
    )
