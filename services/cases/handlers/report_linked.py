"""ReportLinked → the link on the clue, its raised priority, and a superseded clue closed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.ruleset import RuleSet
from services.cases.store.links import record_report_link
from services.cases.store.tables import CaseFileRow
from services.contracts.intake import ReportLinked
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent


class ReportLinkedHandler:
    """Records every repeated report intake joins to a clue (重复举报), once."""

    def __init__(self, rule_versions: Mapping[str, RuleSet], *, lock: bool) -> None:
        self._rules = rule_versions
        self._lock = lock

    async def __call__(
        self, session: AsyncSession, event: ReportLinked, envelope: Envelope
    ) -> None:
        """Apply the event in the consumer's transaction."""
        if event.superseded_clue_id == event.clue_id:
            raise PoisonEvent(f"clue {event.clue_id} cannot supersede itself")
        for clue_id in filter(None, (event.clue_id, event.superseded_clue_id)):
            row = await session.get(CaseFileRow, clue_id)
            if row is not None and row.county_id != event.county_id:
                # Never cross a county boundary, whatever the event says.
                raise PoisonEvent(f"clue {clue_id} is not in county {event.county_id}")
        # An unknown clue raises ClueNotYetKnown: retried (the clue may still be on its way),
        # then dead-lettered by the consumer.
        await record_report_link(
            session,
            event,
            self._rules,
            actor=f"event:{envelope.source}",
            lock=self._lock,
            now=datetime.now(UTC),
        )
