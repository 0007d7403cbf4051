"""ClueRegistered → a clue on the ledger with its disposal deadline."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.clue import NewClue
from services.cases.domain.rules import RuleSet, rules_in_force
from services.cases.store.clues import register_clue
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
        rules = rules_in_force(self._rule_versions, event.registered_at.date())
        await register_clue(session, clue, rules, actor=f"event:{envelope.source}")
