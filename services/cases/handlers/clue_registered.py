"""ClueRegistered → a clue on the ledger, its case file, and its running disposal deadline."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.casefile import new_case_file
from services.cases.domain.clue import NewClue
from services.cases.domain.rules import rules_in_force
from services.cases.domain.ruleset import RuleSet
from services.cases.store import codec
from services.cases.store.clues import register_clue
from services.cases.store.deadlines import open_first_deadline
from services.cases.store.tables import CaseFileRow
from services.contracts.intake import ClueRegistered
from services.runtime.envelope import Envelope


class ClueRegisteredHandler:
    """Registers every clue intake publishes."""

    def __init__(self, rule_versions: list[RuleSet]) -> None:
        self._rule_versions = rule_versions

    async def __call__(
        self, session: AsyncSession, event: ClueRegistered, envelope: Envelope
    ) -> None:
        """Apply the event in the consumer's transaction."""
        clue = NewClue(
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
        # The clue keeps the rules in force when it was registered, not when it arrived here.
        # On the county's date: a version takes effect at its midnight, not UTC's.
        day = self._rule_versions[0].calendar.local_date(event.registered_at)
        rules = rules_in_force(self._rule_versions, day)
        if not await register_clue(session, clue, rules, actor=f"event:{envelope.source}"):
            return
        # Core inserts, not ORM rows: this runs once per consumed clue, and nothing later in
        # the transaction needs the rows as objects.
        connection = await session.connection()
        await connection.execute(
            insert(CaseFileRow).values(
                case_id=clue.clue_id,
                county_id=clue.county_id,
                zone_id=clue.zone_id,
                township_id=clue.township_id,
                subject_key=subject_key(event),
                categories=json.dumps(sorted(clue.allegation_categories)),
                stage="registered",
                rule_version=rules.version,
                state=codec.encode(new_case_file(clue.clue_id, clue.subject_cadre_level, rules)),
                revision=0,
                updated_at=event.registered_at if event.back_entered else datetime.now(UTC),
            )
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


def subject_key(event: ClueRegistered) -> str:
    """A stable, name-free key for the person reported, for staffing's conflict checks."""
    subject = event.subject
    raw = "\x1f".join((event.county_id, subject.name, subject.unit, subject.township_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
