"""ClueRegistered → a clue on the ledger, its case file, and its running disposal deadline."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.casefile import new_case_file
from services.cases.domain.clue import NewClue, disposal_due
from services.cases.domain.rules import rules_in_force
from services.cases.domain.ruleset import RuleSet
from services.cases.store import codec
from services.cases.store.clues import (
    audit_registered,
    clue_row,
    register_clue,
    registered_already,
)
from services.cases.store.deadlines import first_deadline_row, open_first_deadline
from services.cases.store.tables import CaseFileRow, ClueRow, DeadlineRow
from services.contracts.intake import ClueRegistered
from services.runtime.bulk import BulkInsert
from services.runtime.envelope import Envelope


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


# Built once: one event at a time inserts its case file with it.
_CASE_FILE_INSERT = insert(_table(CaseFileRow))


def _bulk(model: Any) -> BulkInsert:
    return BulkInsert(_table(model))


class ClueRegisteredHandler:
    """Registers every clue intake publishes."""

    def __init__(self, rule_versions: list[RuleSet]) -> None:
        self._rule_versions = rule_versions
        # The version in force per county date: a batch's clues share a handful of dates.
        # Keyed by the versions known too, so a version added to the list is seen at once.
        self._in_force: dict[tuple[date, int], RuleSet] = {}
        # A new case file's text but its id, per subject level and rule version.
        self._new_files: dict[tuple[str, str], codec.NewFileEncoder] = {}
        # Categories as the clue stores them (in order) and the case file (sorted), per list
        # of categories: a county's clues share a few dozen lists.
        self._categories: dict[tuple[str, ...], tuple[str, str]] = {}
        # A batch's rows per table, bound by the driver in one executemany each.
        self._clue_rows = _bulk(ClueRow)
        self._case_file_rows = _bulk(CaseFileRow)
        self._deadline_rows = _bulk(DeadlineRow)

    def _rules(self, registered_at: datetime) -> RuleSet:
        # The clue keeps the rules in force when it was registered, not when it arrived here.
        # On the county's date: a version takes effect at its midnight, not UTC's.
        day = self._rule_versions[0].calendar.local_date(registered_at)
        key = (day, len(self._rule_versions))
        rules = self._in_force.get(key)
        if rules is None:
            if len(self._in_force) > 4096:
                self._in_force.clear()
            rules = self._in_force[key] = rules_in_force(self._rule_versions, day)
        return rules

    async def __call__(
        self, session: AsyncSession, event: ClueRegistered, envelope: Envelope
    ) -> None:
        """Apply the event in the consumer's transaction."""
        clue = new_clue(event)
        rules = self._rules(event.registered_at)
        if not await register_clue(session, clue, rules, actor=f"event:{envelope.source}"):
            return
        # Core inserts, not ORM rows: this runs once per consumed clue, and nothing later in
        # the transaction needs the rows as objects.
        connection = await session.connection()
        await connection.execute(
            _CASE_FILE_INSERT.values(**self._case_file_row(event, clue, rules))
        )
        # A back-entered clue's disposal clock may be past due already: it gets the grace.
        await open_first_deadline(
            session,
            record_id=clue.clue_id,
            county_id=clue.county_id,
            zone_id=clue.zone_id,
            kind="disposal",
            rules=rules,
            started_at=event.registered_at,
            recorded_at=datetime.now(UTC) if event.back_entered else None,
        )

    def _case_file_row(
        self, event: ClueRegistered, clue: NewClue, rules: RuleSet, *, now: datetime | None = None
    ) -> dict[str, Any]:
        key = (clue.subject_cadre_level, rules.version)
        encoder = self._new_files.get(key)
        if encoder is None:
            encoder = codec.NewFileEncoder(new_case_file("", clue.subject_cadre_level, rules))
            self._new_files[key] = encoder
        return case_file_row(
            event,
            clue,
            rules,
            state=encoder(clue.clue_id),
            categories_json=self._categories_json(clue)[1],
            now=now,
        )

    def _categories_json(self, clue: NewClue) -> tuple[str, str]:
        """The clue's categories as its row stores them, and as its case file's row does."""
        key = clue.allegation_categories
        encoded = self._categories.get(key)
        if encoded is None:
            if len(self._categories) > 4096:
                self._categories.clear()
            encoded = self._categories[key] = (
                json.dumps(list(key)),
                json.dumps(sorted(key)),
            )
        return encoded

    async def apply_batch(
        self, session: AsyncSession, items: Sequence[tuple[ClueRegistered, Envelope]]
    ) -> None:
        """What `__call__` does for each event in turn, in one statement per table.

        A clue id already on the ledger, or earlier in `items`, registers nothing (as one at a
        time); the audit entries are appended in the events' order.
        """
        known = await registered_already(session, sorted({event.clue_id for event, _ in items}))
        clues: list[dict[str, Any]] = []
        files: list[dict[str, Any]] = []
        deadlines: list[dict[str, Any]] = []
        # One reading of the clock for the batch (its records are applied together).
        now = datetime.now(UTC)
        for event, envelope in items:
            if event.clue_id in known:
                continue
            known.add(event.clue_id)
            clue = new_clue(event)
            rules = self._rules(event.registered_at)
            # One moment for the clue row and its disposal deadline (calendar arithmetic).
            due = disposal_due(clue, rules)
            clues.append(
                clue_row(
                    clue, rules, categories_json=self._categories_json(clue)[0], disposal_due_at=due
                )
            )
            await audit_registered(session, clue, rules, actor=f"event:{envelope.source}")
            files.append(self._case_file_row(event, clue, rules, now=now))
            deadlines.append(
                first_deadline_row(
                    record_id=clue.clue_id,
                    county_id=clue.county_id,
                    zone_id=clue.zone_id,
                    kind="disposal",
                    rules=rules,
                    started_at=event.registered_at,
                    recorded_at=now if event.back_entered else None,
                    due_at=due,
                )
            )
        if not clues:
            return
        # Plain inserts after the look-up: a clue a concurrent delivery registered since then
        # fails the batch, which the consumer then applies one record at a time.
        connection = await session.connection()
        await self._clue_rows.rows(connection, clues)
        await self._case_file_rows.rows(connection, files)
        await self._deadline_rows.rows(connection, deadlines)


def new_clue(event: ClueRegistered) -> NewClue:
    """The clue an event registers."""
    return NewClue(
        clue_id=event.clue_id,
        county_id=event.county_id,
        zone_id=event.zone_id,
        township_id=event.township_id,
        source_report_id=event.report_id,
        channel=event.channel,
        allegation_categories=tuple(event.allegation_categories),
        subject_cadre_level=event.subject.cadre_level,
        real_name=event.real_name,
        registered_at=event.registered_at,
    )


def case_file_row(
    event: ClueRegistered,
    clue: NewClue,
    rules: RuleSet,
    *,
    state: str | None = None,
    categories_json: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The columns of a new clue's case file (`state`, `categories_json`: encoded already;
    `now`: the moment it is filed, if read already)."""
    if state is None:
        state = codec.encode(new_case_file(clue.clue_id, clue.subject_cadre_level, rules))
    if categories_json is None:
        categories_json = json.dumps(sorted(clue.allegation_categories))
    return {
        "case_id": clue.clue_id,
        "county_id": clue.county_id,
        "zone_id": clue.zone_id,
        "township_id": clue.township_id,
        "subject_key": subject_key(event),
        "categories": categories_json,
        "stage": "registered",
        "rule_version": rules.version,
        "state": state,
        "revision": 0,
        "updated_at": event.registered_at if event.back_entered else now or datetime.now(UTC),
    }


def subject_key(event: ClueRegistered) -> str:
    """A stable, name-free key for the person reported, for staffing's conflict checks."""
    subject = event.subject
    raw = "\x1f".join((event.county_id, subject.name, subject.unit, subject.township_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
