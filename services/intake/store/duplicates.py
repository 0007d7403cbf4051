"""Duplicate detection against stored reports, near-duplicate flags and officers' decisions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, update
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.intake import ReportLinked
from services.intake.domain.duplicates import (
    DuplicateProfile,
    DuplicateRules,
    KnownReport,
    Linked,
    Similar,
    classify,
    lookup_match_keys,
    normalise,
    raised_priority,
    stored_match_keys,
)
from services.intake.domain.rulebook import RuleBook
from services.intake.domain.rules import IntakeRules
from services.intake.store.tables import (
    ClueLedgerRow,
    DuplicateCandidateRow,
    ReportMatchKeyRow,
    ReportRow,
    TownshipGateRow,
)
from services.runtime import audit
from services.runtime.db import Database, as_utc
from services.runtime.ids import time_ordered_uuid
from services.runtime.outbox import record_event

EVENT_SOURCE = "xiezuo/intake"
PENDING, LINKED, KEPT_SEPARATE = "pending", "linked", "kept_separate"


def duplicate_rules(rules: IntakeRules) -> DuplicateRules:
    """The duplicate part of a rules version."""
    return DuplicateRules(rules.duplicate_window_days, rules.near_name_max_edits)


def profile_of_row(row: ReportRow) -> DuplicateProfile:
    """The duplicate profile of a stored report."""
    return DuplicateProfile(
        county_id=row.county_id,
        subject_name=normalise(row.subject_name),
        subject_unit=normalise(row.subject_unit),
        township_id=row.township_id,
        categories=frozenset(json.loads(row.allegation_categories)),
        received_at=as_utc(row.received_at),
    )


async def hold_township(session: AsyncSession, county_id: str, township_id: str) -> None:
    """Serialise submissions on a township until this transaction ends (call it first).

    Two identical reports arriving together would otherwise both find no earlier report and
    both open a clue. The gate row's write holds it (a row lock on PostgreSQL, the database's
    write lock on SQLite) so the second matches against the first once that has committed.
    """
    connection = await session.connection()
    held = await connection.execute(
        _GATE_HELD, {"gate_county_id": county_id, "gate_township_id": township_id}
    )
    if held.rowcount == 0:
        # The township's first report: a racing first report fails on the key and retries.
        session.add(TownshipGateRow(county_id=county_id, township_id=township_id, submissions=1))
        await session.flush()


async def match_report(
    session: AsyncSession, profile: DuplicateProfile, rules: DuplicateRules
) -> Linked | list[Similar]:
    """Compare a new report with the county's reports on the same township within the window.

    Only reports sharing a match key with the new one are read (an indexed look-up that does
    not grow with the township's history); `classify` then applies the rules as before.
    """
    window = timedelta(days=rules.window_days)
    earliest, latest = profile.received_at - window, profile.received_at + window
    keys = lookup_match_keys(profile, rules)
    if keys is None:
        query = select(ReportRow).where(
            ReportRow.county_id == profile.county_id,
            ReportRow.township_id == profile.township_id,
            col(ReportRow.received_at) >= earliest,
            col(ReportRow.received_at) <= latest,
        )
    else:
        candidates = select(ReportMatchKeyRow.report_id).where(
            col(ReportMatchKeyRow.match_key).in_(sorted(keys)),
            col(ReportMatchKeyRow.received_at) >= earliest,
            col(ReportMatchKeyRow.received_at) <= latest,
        )
        report_ids = sorted(set((await session.exec(candidates)).all()))
        if not report_ids:
            return []
        # By primary key only: with the township's filters the planner would scan its window.
        query = select(ReportRow).where(col(ReportRow.report_id).in_(report_ids))
    known = [
        KnownReport(row.report_id, row.clue_id, profile_of_row(row))
        for row in (await session.exec(query)).all()
        # Reports forwarded upward at reception opened no clue here (and have no keys).
        if row.duplicate_fingerprint is not None
        and (row.county_id, row.township_id) == (profile.county_id, profile.township_id)
    ]
    return classify(profile, known, rules)


async def stored_candidates(
    session: AsyncSession, wanted: Sequence[tuple[DuplicateProfile, DuplicateRules]]
) -> list[list[KnownReport] | None]:
    """For each profile, the stored reports `match_report` would compare it with.

    Two queries for a whole group (its match keys, then the reports they name) instead of two
    per report; the same keys, window and filters as `match_report`, applied per profile.
    None for a profile whose rules need the township's full window (`match_report` reads it).
    """
    lookups: list[tuple[frozenset[str], datetime, datetime] | None] = []
    for profile, rules in wanted:
        keys = lookup_match_keys(profile, rules)
        window = timedelta(days=rules.window_days)
        lookups.append(
            None
            if keys is None
            else (keys, profile.received_at - window, profile.received_at + window)
        )
    keyed = [lookup for lookup in lookups if lookup is not None]
    if not keyed:
        return [None for _ in lookups]
    # Core through the connection: plain rows, no ORM entities to build.
    connection = await session.connection()
    hits = await connection.execute(
        _KEYED_CANDIDATES,
        {
            "keys": sorted(set().union(*(k for k, _, _ in keyed))),
            "earliest": min(earliest for _, earliest, _ in keyed),
            "latest": max(latest for _, _, latest in keyed),
        },
    )
    by_key: dict[str, list[tuple[str, datetime]]] = {}
    for report_id, key, received_at in hits.all():
        by_key.setdefault(key, []).append((report_id, as_utc(received_at)))
    chosen: list[set[str] | None] = []
    for lookup in lookups:
        if lookup is None:
            chosen.append(None)
            continue
        keys, earliest, latest = lookup
        chosen.append(
            {
                report_id
                for key in keys
                for report_id, at in by_key.get(key, ())
                if earliest <= at <= latest
            }
        )
    wanted_ids = sorted(set().union(*(ids for ids in chosen if ids)))
    stored: dict[str, KnownReport] = {}
    if wanted_ids:
        rows = await connection.execute(_CANDIDATE_PROFILES, {"report_ids": wanted_ids})
        for row in rows.all():
            # Reports forwarded upward at reception opened no clue here (and have no keys).
            if row.duplicate_fingerprint is not None:
                stored[row.report_id] = KnownReport(
                    row.report_id,
                    row.clue_id,
                    DuplicateProfile(
                        county_id=row.county_id,
                        subject_name=normalise(row.subject_name),
                        subject_unit=normalise(row.subject_unit),
                        township_id=row.township_id,
                        categories=frozenset(json.loads(row.allegation_categories)),
                        received_at=as_utc(row.received_at),
                    ),
                )
    found: list[list[KnownReport] | None] = []
    for (profile, _), ids in zip(wanted, chosen, strict=True):
        if ids is None:
            found.append(None)
            continue
        place = (profile.county_id, profile.township_id)
        found.append(
            [
                known
                for report_id in sorted(ids)
                if (known := stored.get(report_id)) is not None
                and (known.profile.county_id, known.profile.township_id) == place
            ]
        )
    return found


_PROFILE_COLUMNS = (
    col(ReportRow.report_id),
    col(ReportRow.clue_id),
    col(ReportRow.county_id),
    col(ReportRow.township_id),
    col(ReportRow.subject_name),
    col(ReportRow.subject_unit),
    col(ReportRow.allegation_categories),
    col(ReportRow.received_at),
    col(ReportRow.duplicate_fingerprint),
)


# Statements on the group's path built once, their values bound when executed: building one
# (its clauses and cache key) cost the loop more than SQLite took to run it (session 20).
_GATE_HELD = (
    update(TownshipGateRow)
    .where(
        col(TownshipGateRow.county_id) == bindparam("gate_county_id"),
        col(TownshipGateRow.township_id) == bindparam("gate_township_id"),
    )
    .values(submissions=col(TownshipGateRow.submissions) + 1)
)
_KEYED_CANDIDATES = sql_select(
    col(ReportMatchKeyRow.report_id),
    col(ReportMatchKeyRow.match_key),
    col(ReportMatchKeyRow.received_at),
).where(
    col(ReportMatchKeyRow.match_key).in_(bindparam("keys", expanding=True)),
    col(ReportMatchKeyRow.received_at) >= bindparam("earliest"),
    col(ReportMatchKeyRow.received_at) <= bindparam("latest"),
)
_CANDIDATE_PROFILES = sql_select(*_PROFILE_COLUMNS).where(
    col(ReportRow.report_id).in_(bindparam("report_ids", expanding=True))
)


def may_match(profile: DuplicateProfile, earlier: DuplicateProfile, rules: DuplicateRules) -> bool:
    """Whether `match_report` would read `earlier` (stored) as a candidate for `profile`."""
    if (earlier.county_id, earlier.township_id) != (profile.county_id, profile.township_id):
        return False
    keys = lookup_match_keys(profile, rules)
    # Without keys the township's window is read; `classify` applies the window itself.
    return keys is None or not keys.isdisjoint(stored_match_keys(earlier))


def match_key_rows(report: ReportRow, profile: DuplicateProfile) -> list[ReportMatchKeyRow]:
    """The rows that store the report under its match keys, so later reports find it."""
    return [
        ReportMatchKeyRow(report_id=report.report_id, match_key=key, received_at=report.received_at)
        for key in sorted(stored_match_keys(profile))
    ]


def index_report(session: AsyncSession, report: ReportRow, profile: DuplicateProfile) -> None:
    """Store the report under its match keys, so later reports find it."""
    session.add_all(match_key_rows(report, profile))


@dataclass(frozen=True)
class Joined:
    """The outcome of joining a report to a clue."""

    clue_id: str
    repeat_count: int
    priority: int
    progress: str


async def join_clue(
    session: AsyncSession,
    report: ReportRow,
    clue_id: str,
    rules: IntakeRules,
    *,
    linked_by: str,
    now: datetime,
    superseded_clue_id: str | None = None,
) -> Joined:
    """Attach the report to the clue, raise the clue's priority and publish ReportLinked."""
    clue = await session.get(ClueLedgerRow, clue_id, with_for_update=True)
    if clue is None:
        raise LookupError(f"clue {clue_id} is not on intake's ledger")
    clue.repeat_count += 1
    clue.priority = raised_priority(
        clue.priority, per_repeat=rules.triage.per_repeat, cap=rules.triage.max
    )
    session.add(clue)
    report.clue_id, report.linked_at = clue_id, now
    session.add(report)
    record_event(
        session,
        ReportLinked(
            county_id=report.county_id,
            zone_id=clue.zone_id,
            report_id=report.report_id,
            clue_id=clue_id,
            township_id=report.township_id,
            channel=report.channel,
            allegation_categories=json.loads(report.allegation_categories),
            real_name=report.real_name,
            received_at=report.received_at,
            linked_at=now,
            repeat_count=clue.repeat_count,
            priority=clue.priority,
            linked_by=linked_by,
            superseded_clue_id=superseded_clue_id,
            rules_version=rules.version,
        ),
        source=EVENT_SOURCE,
        occurred_at=now,
    )
    return Joined(clue_id, clue.repeat_count, clue.priority, clue.progress)


class FlaggedReport(Protocol):
    """What a near-duplicate flag names of the new report (a `ReportRow` or a draft of one)."""

    @property
    def county_id(self) -> str: ...
    @property
    def zone_id(self) -> str: ...
    @property
    def report_id(self) -> str: ...
    @property
    def clue_id(self) -> str: ...


def candidate_values(
    report: FlaggedReport, similar: list[Similar], *, now: datetime
) -> list[dict[str, object]]:
    """`flag_candidates`' rows as column values, for one INSERT (a crowded window flags dozens)."""
    return [
        {
            "candidate_id": f"dup-{time_ordered_uuid().hex}",
            "county_id": report.county_id,
            "zone_id": report.zone_id,
            "report_id": report.report_id,
            "clue_id": report.clue_id,
            "similar_report_id": candidate.report_id,
            "similar_clue_id": candidate.clue_id,
            "reason": candidate.reason,
            "flagged_at": now,
            "state": PENDING,
        }
        for candidate in similar
    ]


def flag_candidates(
    session: AsyncSession, report: ReportRow, similar: list[Similar], *, now: datetime
) -> None:
    """Store each near-duplicate for an officer to decide."""
    for candidate in similar:
        session.add(
            DuplicateCandidateRow(
                candidate_id=f"dup-{time_ordered_uuid().hex}",
                county_id=report.county_id,
                zone_id=report.zone_id,
                report_id=report.report_id,
                clue_id=report.clue_id,
                similar_report_id=candidate.report_id,
                similar_clue_id=candidate.clue_id,
                reason=candidate.reason,
                flagged_at=now,
                state=PENDING,
            )
        )


class CandidateDecided(Exception):
    """The candidate was already decided differently."""


@dataclass(frozen=True)
class CandidatePage:
    """One page of flagged near-duplicates."""

    candidates: list[DuplicateCandidateRow]
    next_offset: int | None


class DuplicateDesk:
    """Near-duplicates an officer lists and decides (link or keep separate)."""

    def __init__(self, database: Database, rule_book: RuleBook) -> None:
        self._db = database
        self._rule_book = rule_book

    async def get(self, candidate_id: str) -> DuplicateCandidateRow | None:
        """One candidate, or None."""
        async with self._db.session() as session:
            return await session.get(DuplicateCandidateRow, candidate_id)

    async def list(
        self,
        *,
        county_id: str,
        zone_ids: frozenset[str] | None,
        pending_only: bool,
        offset: int,
        limit: int,
        actor: str,
        now: datetime,
    ) -> CandidatePage:
        """Candidates of the county (and zones, None = all), oldest first; the read is audited."""
        async with self._db.transaction() as session:
            query = select(DuplicateCandidateRow).where(
                DuplicateCandidateRow.county_id == county_id
            )
            if zone_ids is not None:
                query = query.where(col(DuplicateCandidateRow.zone_id).in_(sorted(zone_ids)))
            if pending_only:
                query = query.where(DuplicateCandidateRow.state == PENDING)
            query = query.order_by(
                col(DuplicateCandidateRow.flagged_at), col(DuplicateCandidateRow.candidate_id)
            )
            rows = list((await session.exec(query.offset(offset).limit(limit + 1))).all())
            page = rows[:limit]
            for row in page:
                await audit.append(
                    session,
                    county_id=county_id,
                    actor=actor,
                    action="report.duplicate_candidate_read",
                    record_type="report",
                    record_id=row.report_id,
                    detail={"candidate_id": row.candidate_id},
                    at=now,
                )
        return CandidatePage(page, offset + limit if len(rows) > limit else None)

    async def decide(
        self, candidate_id: str, *, link: bool, reason: str, actor: str, now: datetime
    ) -> DuplicateCandidateRow:
        """Link the report to the similar clue, or keep it separate; once, audited."""
        target = LINKED if link else KEPT_SEPARATE
        async with self._db.transaction() as session:
            row = await session.get(DuplicateCandidateRow, candidate_id, with_for_update=True)
            if row is None:
                raise LookupError(candidate_id)
            if row.state != PENDING:
                if row.state == target:
                    return row
                raise CandidateDecided(f"candidate {candidate_id} is already {row.state}")
            row.state, row.decided_by, row.decided_at = target, actor, now
            row.decision_reason = reason
            session.add(row)
            detail: dict[str, str] = {"candidate_id": candidate_id, "decision": target}
            if link:
                report = await session.get(ReportRow, row.report_id, with_for_update=True)
                assert report is not None
                own_clue = report.clue_id
                rules = self._rule_book.rules_at(report.received_at)
                await join_clue(
                    session,
                    report,
                    row.similar_clue_id,
                    rules,
                    linked_by="officer",
                    now=now,
                    superseded_clue_id=own_clue,
                )
                detail |= {"clue_id": row.similar_clue_id, "superseded_clue_id": own_clue}
            await audit.append(
                session,
                county_id=row.county_id,
                actor=actor,
                action="report.duplicate_decided",
                record_type="report",
                record_id=row.report_id,
                detail=detail,
                at=now,
            )
        return row
