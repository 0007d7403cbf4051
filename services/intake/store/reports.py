"""Registering reports: report, sealed identity, outbox event and audit entry in one commit."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from opentelemetry import propagate
from sqlalchemy import BindParameter, Table, bindparam, tuple_, update
from sqlalchemy import select as sql_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Update
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.intake import ClueRegistered, ReportedSubject
from services.intake.domain.duplicates import (
    DuplicateProfile,
    KnownReport,
    Linked,
    Similar,
    classify,
    profile_of,
    stored_match_keys,
)
from services.intake.domain.receipt import KEY_BYTES, ReceiptKeys, new_receipt_code
from services.intake.domain.report import Submission, fingerprint
from services.intake.domain.rulebook import RuleBook
from services.intake.domain.rules import IntakeRules
from services.intake.domain.status import ReportStatus
from services.intake.domain.triage import signals_of, triage_score
from services.intake.store.duplicates import (
    FlaggedReport,
    candidate_values,
    duplicate_rules,
    flag_candidates,
    hold_township,
    index_report,
    join_clue,
    match_report,
    may_match,
    stored_candidates,
)
from services.intake.store.group_commit import GroupCommit, WriteAlone
from services.intake.store.jurisdiction import forward_upward
from services.intake.store.tables import (
    AttachmentRow,
    ClueLedgerRow,
    DuplicateCandidateRow,
    ReportMatchKeyRow,
    ReportRow,
    SealedChannelDetailRow,
    SealedIdentityRow,
    TownshipGateRow,
)
from services.intake.store.vault import Vault
from services.runtime import audit
from services.runtime.backentry import BACK_ENTRY_GRACE
from services.runtime.bulk import BulkInsert
from services.runtime.db import OUTBOX_WRITTEN, Database
from services.runtime.ids import time_ordered_uuid
from services.runtime.keyed_lookup import planned_now, probe_each
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.outbox import outbox_row

EVENT_SOURCE = "xiezuo/intake"


@dataclass(frozen=True)
class Registration:
    """What the submitter learns; `receipt_code` is empty when replaying an earlier call."""

    report_id: str
    clue_id: str
    receipt_code: str
    registered_at: datetime
    zone_id: str
    replayed: bool
    # A replay whose request differs from the one first registered under the same key.
    conflicting: bool = False
    # The report joined an existing clue (a repeat) instead of opening its own.
    linked: bool = False
    status: str = ReportStatus.RECEIVED.value


class ReportFacts(FlaggedReport, Protocol):
    """What a new clue's rows name of its first report (a `ReportRow` or a `Draft`)."""

    @property
    def township_id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def real_name(self) -> bool: ...
    @property
    def campaign_id(self) -> str | None: ...
    @property
    def received_at(self) -> datetime: ...


@dataclass
class Draft:
    """A submission sealed, hashed and ruled on, waiting for its short write.

    The report and its sealed parts are plain column values (a group's run inserts them as
    they are); a table model is built from them only on the one-by-one path (`report_row`).
    """

    submission: Submission
    # Every column of the report row, as `ReportRow` would give them.
    report: dict[str, Any]
    # The sealed identity, channel details and attachment rows: (table name, column values).
    parts: list[tuple[str, dict[str, object]]]
    profile: DuplicateProfile
    rules: IntakeRules
    taxonomy_version: str
    priority: int
    forward_to: str | None
    receipt_code: str
    actor: str
    now: datetime
    registered_at: datetime
    detail: dict[str, object] = field(default_factory=dict)

    # What the rest of the write names, read from the report's values (one source).
    @property
    def report_id(self) -> str:
        return cast(str, self.report["report_id"])

    @property
    def clue_id(self) -> str:
        return cast(str, self.report["clue_id"])

    @property
    def received_at(self) -> datetime:
        return cast(datetime, self.report["received_at"])

    @property
    def request_fingerprint(self) -> str:
        return cast(str, self.report["request_fingerprint"])

    @property
    def county_id(self) -> str:
        return self.submission.county_id

    @property
    def zone_id(self) -> str:
        return self.submission.zone_id

    @property
    def township_id(self) -> str:
        return self.submission.township_id

    @property
    def idempotency_key(self) -> str:
        return self.submission.idempotency_key

    @property
    def channel(self) -> str:
        assert self.submission.channel is not None
        return self.submission.channel.value

    @property
    def real_name(self) -> bool:
        return self.submission.reporter is not None

    @property
    def campaign_id(self) -> str | None:
        return self.submission.campaign_id

    @property
    def gate(self) -> tuple[str, str]:
        """The township gate its duplicate matching goes through."""
        return self.county_id, self.township_id

    def report_row(self) -> ReportRow:
        """A fresh table model of the report, for the one-by-one path."""
        return ReportRow(**self.report)

    def part_rows(self) -> list[SQLModel]:
        """Fresh table models of the sealed parts, for the one-by-one path."""
        return [_PART_MODELS[name](**values) for name, values in self.parts]


class ReportRegistry:
    """Stores reports and registers their clues; concurrent submissions commit in groups."""

    def __init__(
        self,
        database: Database,
        vault: Vault,
        rule_book: RuleBook,
        receipt_keys: ReceiptKeys | None = None,
    ) -> None:
        self._db = database
        self._vault = vault
        self._rule_book = rule_book
        # Without the service's receipt key (tests that never look a receipt up), codes are
        # hashed under a key of this instance only: nothing can find them later.
        self._receipt_keys = receipt_keys or ReceiptKeys(secrets.token_bytes(KEY_BYTES))
        self._writer: GroupCommit[Draft, Registration] = GroupCommit(self._apply_group)
        # A run's INSERT per table, compiled once per dialect (see `_insert_rows`).
        self._inserts: dict[str, BulkInsert] = {}

    async def register(self, submission: Submission, *, actor: str) -> Registration:
        """Register a valid submission once per (county, idempotency key)."""
        digest = fingerprint(submission)
        try:
            draft = self._draft(submission, digest, actor=actor)
        except Exception:
            # A retry is answered from what was registered, even if it could not be drafted now.
            earlier = await self._find(submission.county_id, submission.idempotency_key)
            if earlier is None:
                raise
            return _replay(earlier, digest)
        if draft.forward_to is None:
            # The group looks its keys up together: a retry comes back as a replay from it.
            try:
                return await self._writer.write(draft)
            except WriteAlone:
                # Its group could not take it (a racing key, a failed commit): on its own now.
                draft = self._draft(submission, digest, actor=actor)
        else:
            earlier = await self._find(submission.county_id, submission.idempotency_key)
            if earlier is not None:
                return _replay(earlier, digest)
        try:
            return await self._insert(draft)
        except IntegrityError:
            # A concurrent call with the same key won the race; answer with its result.
            earlier = await self._find(submission.county_id, submission.idempotency_key)
            if earlier is None:
                # Another report opened the township's gate row first: go through it now.
                return await self._insert(self._draft(submission, digest, actor=actor))
            return _replay(earlier, digest)

    async def _find(self, county_id: str, key: str) -> ReportRow | None:
        async with self._db.session() as session:
            query = select(ReportRow).where(
                ReportRow.county_id == county_id, ReportRow.idempotency_key == key
            )
            return (await session.exec(query)).first()

    def _draft(self, submission: Submission, digest: str, *, actor: str) -> Draft:
        """Everything slow or random about a submission, done before any write lock is held."""
        assert submission.subject is not None and submission.channel is not None
        now = datetime.now(UTC)
        # A back-entry (补录) registers at the paper ledger's moment; the audit keeps `now`.
        registered_at = submission.registered_at or now
        report_id = f"rpt-{time_ordered_uuid().hex}"
        clue_id = f"clue-{time_ordered_uuid().hex}"
        receipt_code = new_receipt_code()
        context = report_id.encode()
        content = self._vault.seal(submission.content.encode(), context=context)
        subject = submission.subject
        received_at = submission.received_at or registered_at
        rules = self._rule_book.rules_at(received_at)
        calendar = self._rule_book.calendar
        taxonomy = self._rule_book.taxonomy_at(received_at)
        real_name = submission.reporter is not None
        forward_to = rules.forward_upward.get(subject.cadre_level.value)
        profile = profile_of(submission, received_at=received_at)
        # Every column of ReportRow, the model's defaults under the ones set here; plain
        # values, since a group's run inserts them as they are (a table model costs more).
        report: dict[str, Any] = {
            **_REPORT_DEFAULTS,
            "report_id": report_id,
            "clue_id": clue_id,
            "county_id": submission.county_id,
            "zone_id": submission.zone_id,
            "township_id": submission.township_id,
            "idempotency_key": submission.idempotency_key,
            "request_fingerprint": digest,
            "channel": submission.channel.value,
            "subject_name": subject.name,
            "subject_post": subject.post,
            "subject_unit": subject.unit,
            "subject_township_id": subject.township_id,
            "subject_village": subject.village,
            "subject_cadre_level": subject.cadre_level.value,
            "allegation_categories": json.dumps(list(submission.allegation_categories)),
            "campaign_id": submission.campaign_id,
            "real_name": real_name,
            "content_kek_id": content.kek_id,
            "content_wrapped_key": content.wrapped_key,
            "content_nonce": content.nonce,
            "content_ciphertext": content.ciphertext,
            # Keyed, so it is found by equality and costs microseconds (no slow hash here).
            "receipt_hash": self._receipt_keys.digest(receipt_code),
            "submitted_by": actor,
            "received_at": received_at,
            "registered_at": registered_at,
            "taxonomy_version": taxonomy.version,
            "rules_version": rules.version,
            "forward_due_at": calendar.working_days_after(received_at, rules.forward_working_days),
            # Only a real-name reporter is owed acceptance feedback within the limit.
            "feedback_due_at": calendar.working_days_after(
                received_at, rules.acceptance_feedback_working_days
            )
            if real_name
            else None,
            "duplicate_fingerprint": None if forward_to else profile.fingerprint,
        }
        return Draft(
            submission=submission,
            report=report,
            parts=self._sealed_parts(submission, report_id, context),
            profile=profile,
            rules=rules,
            taxonomy_version=taxonomy.version,
            priority=triage_score(signals_of(submission), rules.triage),
            forward_to=forward_to,
            receipt_code=receipt_code,
            actor=actor,
            now=now,
            registered_at=registered_at,
        )

    async def _insert(self, draft: Draft) -> Registration:
        """One submission in its own transaction."""
        async with self._db.transaction() as session:
            if not draft.forward_to:
                await hold_township(session, draft.county_id, draft.township_id)
            registration = await self._apply(session, draft)
            await self._audit(session, draft)
        return registration

    async def _apply_group(self, drafts: Sequence[Draft]) -> list[Registration | None]:
        """Several submissions in one transaction; None for a draft that must go alone.

        Every township gate of the group is taken first, in one order, so groups of several
        replicas cannot deadlock on them; the audit entries are appended last, after every
        clue row the group locks, as a single submission does. The group's idempotency keys
        are looked up in one query (a key already stored answers as a replay) and its
        duplicate candidates in two; drafts that open a clue are written with one INSERT per
        table for a run of them (`_write_run`). A draft linked to an existing clue goes
        through the ORM in a savepoint of its own, after the run before it is written. If a
        run's INSERTs fail, the run is undone and it and every later draft are applied one by
        one in savepoints, as before, so a failing draft is undone alone and written again
        by itself.
        """
        outcomes: list[Registration | None] = [None] * len(drafts)
        written: list[Draft] = []
        async with self._db.transaction() as session:
            await _hold_townships(session, sorted({d.gate for d in drafts}))
            stored = await self._stored_keys(session, drafts)
            fresh: list[int] = []
            seen: set[tuple[str, str]] = set()
            for index, draft in enumerate(drafts):
                key = (draft.county_id, draft.idempotency_key)
                if key in stored:
                    outcomes[index] = _replay(stored[key], draft.request_fingerprint)
                elif key not in seen:
                    seen.add(key)
                    fresh.append(index)
                # A key twice in one group: the second goes alone and replays the first.
            known = await stored_candidates(
                session,
                [(drafts[i].profile, duplicate_rules(drafts[i].rules)) for i in fresh],
            )
            run: list[tuple[int, list[_TableRow]]] = []
            batched = True
            for index, stored_known in zip(fresh, known, strict=True):
                draft = drafts[index]
                rules = duplicate_rules(draft.rules)
                if batched and stored_known is None:
                    # Rules wider than the keys: the township's window is read as before,
                    # with the pending run written first so it is part of that window.
                    batched = await self._write_run(session, run, drafts, outcomes)
                    run = []
                if not batched:
                    outcomes[index] = await self._apply_alone(session, draft)
                    continue
                if stored_known is None:
                    match = await match_report(session, draft.profile, rules)
                else:
                    # Reports written earlier in this group count as stored for the next
                    # draft: the same candidates it would read if written after them alone.
                    earlier = [
                        KnownReport(d.report_id, d.clue_id, d.profile)
                        for d in written
                        if may_match(draft.profile, d.profile, rules)
                    ]
                    match = classify(draft.profile, [*stored_known, *earlier], rules)
                if isinstance(match, Linked):
                    # Joining locks and updates a clue row that may be in the pending run.
                    batched = await self._write_run(session, run, drafts, outcomes)
                    run = []
                    outcomes[index] = await self._apply_alone(
                        session, draft, match if batched else None
                    )
                else:
                    rows, outcomes[index] = self._opened(draft, match)
                    run.append((index, rows))
                if outcomes[index] is not None:
                    written.append(draft)
            await self._write_run(session, run, drafts, outcomes)
            written = [d for d, o in zip(drafts, outcomes, strict=True) if o and not o.replayed]
            # The audit chain heads are one row per county: taken in one order too (stable sort).
            # Chained in memory and written together: one head lock, one INSERT and one head
            # update per county for the group, the chain an append at a time would give.
            async with audit.deferred_appends(session):
                for draft in sorted(written, key=lambda d: d.county_id):
                    await self._audit(session, draft)
        return outcomes

    async def _stored_keys(
        self, session: AsyncSession, drafts: Sequence[Draft]
    ) -> dict[tuple[str, str], _Stored]:
        """Reports already registered under the group's idempotency keys, in one query.

        Core through the connection, only the columns a replay answers with: the keys are
        almost always new, and an ORM query cost more to run than the database to answer.
        """
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            pairs = sorted({(d.county_id, d.idempotency_key) for d in drafts})
            found: Any = await planned_now(
                connection,
                _STORED_KEYS_PROBED,
                {
                    "county_ids": [county for county, _ in pairs],
                    "idempotency_keys": [key for _, key in pairs],
                },
            )
        else:
            found = await connection.execute(
                _STORED_KEYS,
                {
                    "counties": sorted({d.county_id for d in drafts}),
                    "keys": sorted({d.idempotency_key for d in drafts}),
                },
            )
        return {(row.county_id, row.idempotency_key): row for row in found}

    async def _apply_alone(
        self, session: AsyncSession, draft: Draft, match: Linked | None = None
    ) -> Registration | None:
        """One draft through the ORM in its own savepoint; None if it was undone."""
        try:
            async with session.begin_nested():
                return await self._apply(session, draft, match)
        except Exception:
            return None

    async def _write_run(
        self,
        session: AsyncSession,
        run: list[tuple[int, list[_TableRow]]],
        drafts: Sequence[Draft],
        outcomes: list[Registration | None],
    ) -> bool:
        """A run of clue-opening drafts, one INSERT per table; False if it had to be undone.

        Undone, the run's drafts are applied one by one in savepoints (matched again against
        what is stored, so nothing depends on a report that was not written).
        """
        if not run:
            return True
        try:
            async with session.begin_nested():
                await _insert_rows(session, [row for _, rows in run for row in rows], self._inserts)
            return True
        except Exception:
            for index, _ in run:
                drafts[index].detail.clear()
                outcomes[index] = await self._apply_alone(session, drafts[index])
            return False

    def _opened(self, draft: Draft, similar: list[Similar]) -> tuple[list[_TableRow], Registration]:
        """The rows of a draft that opens its own clue (near-duplicates flagged), in order."""
        registered_at = draft.registered_at
        detail = draft.detail
        detail |= {"channel": draft.channel, "zone_id": draft.zone_id}
        ledger, event = _clue_values(
            draft, draft.submission, draft.taxonomy_version, draft.priority, at=registered_at
        )
        if similar:
            detail["near_duplicates"] = str(len(similar))
        detail["clue_id"] = draft.clue_id
        if draft.submission.registered_at is not None:
            detail |= {"back_entered": True, "registered_at": registered_at.isoformat()}
            draft.report["scan_after"] = draft.now + BACK_ENTRY_GRACE
        keys, at = _MATCH_KEYS.name, draft.received_at
        # Plain values, not table models: building models cost more than inserting them.
        rows: list[_TableRow] = [
            (_REPORTS.name, draft.report),
            *(
                (keys, {"report_id": draft.report_id, "match_key": key, "received_at": at})
                for key in sorted(stored_match_keys(draft.profile))
            ),
            *draft.parts,
            (_LEDGER.name, ledger),
            *(
                (_FLAGS.name, values)
                for values in candidate_values(draft, similar, now=registered_at)
            ),
            (_OUTBOX.name, event),
        ]
        registration = Registration(
            draft.report_id,
            draft.clue_id,
            draft.receipt_code,
            registered_at,
            draft.zone_id,
            replayed=False,
            linked=False,
            status=draft.report["status"],
        )
        return rows, registration

    async def _apply(
        self, session: AsyncSession, draft: Draft, match: Linked | None = None
    ) -> Registration:
        """Match, store, link or open the clue, record the events (gate already held).

        `match`: the link its group already found against what is stored now.
        """
        row, rules, forward_to = draft.report_row(), draft.rules, draft.forward_to
        registered_at = draft.registered_at
        # Matched before the new row is added, so it never matches itself.
        found = match or (
            None
            if forward_to
            else await match_report(session, draft.profile, duplicate_rules(rules))
        )
        session.add(row)
        if not forward_to:
            index_report(session, row, draft.profile)
        session.add_all(draft.part_rows())
        detail = draft.detail
        detail |= {"channel": row.channel, "zone_id": row.zone_id}
        if forward_to:
            # Managed above the county: no clue opens here, so none is named.
            row.clue_id = ""
            await forward_upward(session, self._vault, row, forward_to, now=registered_at)
            detail["forwarded_to"] = forward_to
        elif isinstance(found, Linked):
            joined = await join_clue(
                session,
                row,
                found.clue_id,
                rules,
                linked_by="fingerprint",
                now=registered_at,
            )
            if joined.progress:
                row.status = joined.progress
            detail |= {"linked_to_clue_id": joined.clue_id, "repeat_of": found.report_id}
        else:
            self._open_clue(
                session,
                row,
                draft.submission,
                draft.taxonomy_version,
                draft.priority,
                at=registered_at,
            )
            flag_candidates(session, row, found or [], now=registered_at)
            if found:
                detail["near_duplicates"] = str(len(found))
        detail["clue_id"] = row.clue_id
        if draft.submission.registered_at is not None:
            detail |= {"back_entered": True, "registered_at": registered_at.isoformat()}
            # Its paper deadlines may be past already: the decisions follow in the entry.
            row.scan_after = draft.now + BACK_ENTRY_GRACE
        # Surfaces a racing idempotency key here, inside the caller's transaction or savepoint.
        await session.flush()
        return Registration(
            row.report_id,
            row.clue_id,
            draft.receipt_code,
            registered_at,
            row.zone_id,
            replayed=False,
            linked=row.linked_at is not None,
            status=row.status,
        )

    async def _audit(self, session: AsyncSession, draft: Draft) -> None:
        await audit.append(
            session,
            county_id=draft.county_id,
            actor=draft.actor,
            action="report.submitted",
            record_type="report",
            record_id=draft.report_id,
            detail=draft.detail,
            at=draft.now,
        )

    def _sealed_parts(
        self, submission: Submission, report_id: str, context: bytes
    ) -> list[_TableRow]:
        """The sealed identity, channel details and attachment rows of a report, as values."""
        parts: list[_TableRow] = []
        if submission.reporter is not None:
            identity = json.dumps(asdict(submission.reporter)).encode()
            sealed = self._vault.seal(identity, context=context)
            parts.append(
                (
                    _IDENTITIES.name,
                    {
                        "report_id": report_id,
                        "kek_id": sealed.kek_id,
                        "wrapped_key": sealed.wrapped_key,
                        "nonce": sealed.nonce,
                        "ciphertext": sealed.ciphertext,
                    },
                )
            )
        if submission.channel_details is not None:
            details = json.dumps(submission.channel_details.values).encode()
            sealed_details = self._vault.seal(details, context=context)
            parts.append(
                (
                    _CHANNEL_DETAILS.name,
                    {
                        "report_id": report_id,
                        "kek_id": sealed_details.kek_id,
                        "wrapped_key": sealed_details.wrapped_key,
                        "nonce": sealed_details.nonce,
                        "ciphertext": sealed_details.ciphertext,
                    },
                )
            )
        for position, attachment in enumerate(submission.attachments):
            parts.append(
                (
                    _ATTACHMENTS.name,
                    {
                        "report_id": report_id,
                        "position": position,
                        # Evidence of the report itself, not of information added later.
                        "information_id": None,
                        "sha256": attachment.sha256,
                        "size_bytes": attachment.size_bytes,
                        "media_type": attachment.media_type,
                    },
                )
            )
        return parts

    def _open_clue(
        self,
        session: AsyncSession,
        row: ReportRow,
        submission: Submission,
        taxonomy_version: str,
        priority: int,
        *,
        at: datetime,
    ) -> None:
        """A new clue: on intake's ledger and published for cases."""
        ledger, event = self._clue_rows(row, submission, taxonomy_version, priority, at=at)
        session.add(ledger)
        session.add(event)
        session.info[OUTBOX_WRITTEN] = True

    @staticmethod
    def _clue_rows(
        row: ReportRow,
        submission: Submission,
        taxonomy_version: str,
        priority: int,
        *,
        at: datetime,
    ) -> tuple[ClueLedgerRow, OutboxMessage]:
        """A new clue's ledger row and its ClueRegistered outbox row (not added anywhere)."""
        ledger = ClueLedgerRow(
            clue_id=row.clue_id,
            county_id=row.county_id,
            zone_id=row.zone_id,
            first_report_id=row.report_id,
            registered_at=at,
            repeat_count=0,
            priority=priority,
            progress="",
        )
        event = _clue_event(row, submission, taxonomy_version, priority, at=at)
        return ledger, outbox_row(event, source=EVENT_SOURCE, occurred_at=at)


_TableRow = tuple[str, dict[str, object]]
_REPORTS: Table = ReportRow.__table__  # type: ignore[attr-defined]
# The columns a new report leaves at the model's default (status, notes, later dates).
_REPORT_DEFAULTS: dict[str, Any] = {
    name: info.default for name, info in ReportRow.model_fields.items() if not info.is_required()
}
_REPLAY_COLUMNS = [
    _REPORTS.c[name]
    for name in (
        "county_id",
        "idempotency_key",
        "report_id",
        "clue_id",
        "registered_at",
        "zone_id",
        "request_fingerprint",
        "linked_at",
        "status",
    )
]
_IDENTITIES: Table = SealedIdentityRow.__table__  # type: ignore[attr-defined]
_CHANNEL_DETAILS: Table = SealedChannelDetailRow.__table__  # type: ignore[attr-defined]
_ATTACHMENTS: Table = AttachmentRow.__table__  # type: ignore[attr-defined]
_PART_MODELS: dict[str, type[SQLModel]] = {
    _IDENTITIES.name: SealedIdentityRow,
    _CHANNEL_DETAILS.name: SealedChannelDetailRow,
    _ATTACHMENTS.name: AttachmentRow,
}
_MATCH_KEYS: Table = ReportMatchKeyRow.__table__  # type: ignore[attr-defined]
_FLAGS: Table = DuplicateCandidateRow.__table__  # type: ignore[attr-defined]
_LEDGER: Table = ClueLedgerRow.__table__  # type: ignore[attr-defined]
_GATES: Table = TownshipGateRow.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]


def _clue_values(
    row: ReportFacts,
    submission: Submission,
    taxonomy_version: str,
    priority: int,
    *,
    at: datetime,
) -> tuple[dict[str, object], dict[str, object]]:
    """A new clue's ledger and ClueRegistered outbox column values, no table models built.

    The values `outbox_row` and the ledger model would give, every column named (the outbox
    sequence left to the database), so a run's INSERT is the same whichever path built it.
    """
    ledger: dict[str, object] = {
        "clue_id": row.clue_id,
        "county_id": row.county_id,
        "zone_id": row.zone_id,
        "first_report_id": row.report_id,
        "registered_at": at,
        "repeat_count": 0,
        "priority": priority,
        "progress": "",
        "progress_at": None,
    }
    event = _clue_event(row, submission, taxonomy_version, priority, at=at)
    carrier: dict[str, str] = {}
    # As outbox_row: the request's trace context travels with the row to the consumer.
    propagate.inject(carrier)
    outbox: dict[str, object] = {
        "event_id": str(time_ordered_uuid()),
        "event_type": event.event_type,
        "topic": event.topic,
        "partition_key": event.partition_key(),
        "source": EVENT_SOURCE,
        "subject": event.subject_id(),
        "county_id": event.county_id,
        "zone_id": event.zone_id,
        "occurred_at": at,
        "payload": event.model_dump_json(),
        "traceparent": carrier.get("traceparent"),
        "tracestate": carrier.get("tracestate"),
        "recorded_at": datetime.now(UTC),
        "published_at": None,
        "publish_attempts": 0,
    }
    return ledger, outbox


def _clue_event(
    row: ReportFacts,
    submission: Submission,
    taxonomy_version: str,
    priority: int,
    *,
    at: datetime,
) -> ClueRegistered:
    """The ClueRegistered event of a report that opens its own clue."""
    subject = submission.subject
    assert subject is not None
    return ClueRegistered(
        county_id=row.county_id,
        zone_id=row.zone_id,
        clue_id=row.clue_id,
        report_id=row.report_id,
        township_id=row.township_id,
        channel=row.channel,
        allegation_categories=list(submission.allegation_categories),
        subject=ReportedSubject(
            name=subject.name,
            post=subject.post,
            unit=subject.unit,
            township_id=subject.township_id,
            village=subject.village,
            cadre_level=subject.cadre_level.value,
        ),
        real_name=row.real_name,
        campaign_id=row.campaign_id,
        received_at=row.received_at,
        registered_at=at,
        taxonomy_version=taxonomy_version,
        priority=priority,
        back_entered=submission.registered_at is not None,
    )


def gates_statement(gates: Sequence[tuple[str, str]] | BindParameter[Any]) -> Update:
    """One UPDATE taking the group's township gates, row locks in (county, township) order.

    The rows are locked by a sub-select ordered by their key with FOR UPDATE (on PostgreSQL
    the plan's LockRows sits above its Sort, so locks are taken in that order whatever the
    scan; a bare `UPDATE ... WHERE key IN (...)` locks in scan order, which is not fixed);
    SQLite has no row locks, the UPDATE takes the database's write lock as before. The
    service runs it built once (`_GATES_HELD`), the gates bound when it is executed.
    """
    key = tuple_(_GATES.c.county_id, _GATES.c.township_id)
    locked = (
        sql_select(_GATES.c.county_id, _GATES.c.township_id)
        .where(key.in_(gates))
        .order_by(_GATES.c.county_id, _GATES.c.township_id)
        .with_for_update()
    )
    return (
        update(_GATES)
        .where(key.in_(locked))
        .values(submissions=_GATES.c.submissions + 1)
        .returning(_GATES.c.county_id, _GATES.c.township_id)
    )


# Statements on the group's path built once, their lists bound when executed: building one
# (its clauses and cache key) cost the loop more than SQLite took to run it (session 20).
_GATES_HELD = gates_statement(bindparam("gates", expanding=True))
_STORED_KEYS = sql_select(*_REPLAY_COLUMNS).where(
    _REPORTS.c.county_id.in_(bindparam("counties", expanding=True)),
    _REPORTS.c.idempotency_key.in_(bindparam("keys", expanding=True)),
)
# PostgreSQL: one probe of the (county_id, idempotency_key) unique index per key, whatever
# the report table held when the prepared statement's plan was made (keyed_lookup).
_STORED_KEYS_PROBED = probe_each(
    _REPLAY_COLUMNS, [_REPORTS.c.county_id, _REPORTS.c.idempotency_key]
)


async def _hold_townships(session: AsyncSession, gates: Sequence[tuple[str, str]]) -> None:
    """Every township gate of a group (sorted), one statement for those already stored.

    A township's first report has no gate row yet: those are opened after, in order, as one
    submission opens its own.
    """
    if len(gates) == 1:
        await hold_township(session, *gates[0])
        return
    connection = await session.connection()
    held = {(c, t) for c, t in await connection.execute(_GATES_HELD, {"gates": list(gates)})}
    for county_id, township_id in gates:
        if (county_id, township_id) not in held:
            await hold_township(session, county_id, township_id)


def _table_row(row: SQLModel) -> _TableRow:
    """A table model's row as its table's name and column values."""
    table: Table = row.__table__  # type: ignore[attr-defined]
    # A primary key left unset (the outbox sequence) is the database's to fill.
    values = {
        column.name: value
        for column in table.columns
        if (value := getattr(row, column.name)) is not None or not column.primary_key
    }
    return table.name, values


async def _insert_rows(
    session: AsyncSession, rows: Sequence[_TableRow], inserts: dict[str, BulkInsert]
) -> None:
    """The rows with one INSERT per table (executemany), tables in first-seen order.

    Rows keep their order within a table, so outbox rows get their sequence in draft order.
    Each table's INSERT is compiled once (`inserts` keeps them) and bound by the driver: a
    table's rows always name the same columns, every one but the outbox sequence.
    """
    by_table: dict[str, list[dict[str, object]]] = {}
    for name, values in rows:
        by_table.setdefault(name, []).append(values)
    connection = await session.connection()
    for name, values_list in by_table.items():
        bulk = inserts.get(name)
        if bulk is None:
            bulk = inserts[name] = BulkInsert(SQLModel.metadata.tables[name])
        await bulk.rows(connection, values_list)
        if name == OutboxMessage.__tablename__:
            session.info[OUTBOX_WRITTEN] = True


class _Stored(Protocol):
    """What a replay answers with of a stored report (a `ReportRow` or a row of its columns)."""

    @property
    def report_id(self) -> str: ...
    @property
    def clue_id(self) -> str: ...
    @property
    def registered_at(self) -> datetime: ...
    @property
    def zone_id(self) -> str: ...
    @property
    def request_fingerprint(self) -> str: ...
    @property
    def linked_at(self) -> datetime | None: ...
    @property
    def status(self) -> str: ...


def _replay(row: _Stored, digest: str) -> Registration:
    # The receipt code exists only as a hash, so a retried call cannot show it again.
    return Registration(
        row.report_id,
        row.clue_id,
        "",
        row.registered_at,
        row.zone_id,
        replayed=True,
        conflicting=row.request_fingerprint != digest,
        linked=row.linked_at is not None,
        status=row.status,
    )
