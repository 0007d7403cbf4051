"""Cases' workflow events → the coarse status a reporter may see (in progress, concluded)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.cases import CaseStepRecorded
from services.intake.domain.progress import PROGRESS_OF_EVENT
from services.intake.domain.rulebook import RuleBook
from services.intake.store.progress import apply_progress
from services.intake.store.vault import Vault
from services.runtime.envelope import Envelope


class CaseProgressHandler:
    """Applies one workflow step of a clue or case (its case_id is the clue id)."""

    def __init__(self, vault: Vault, rule_book: RuleBook) -> None:
        self._vault = vault
        self._rule_book = rule_book

    async def __call__(
        self, session: AsyncSession, event: CaseStepRecorded, envelope: Envelope
    ) -> None:
        """Apply the step in the consumer's transaction."""
        await apply_progress(
            session,
            self._vault,
            county_id=event.county_id,
            clue_id=event.case_id,
            progress=PROGRESS_OF_EVENT[event.event_type],
            actor=f"event:{envelope.source}",
            now=datetime.now(UTC),
            rule_book=self._rule_book,
            # The closure moment is the step's own time, not when intake heard of it.
            occurred_at=event.occurred_at,
            back_entered=event.detail.get("back_entered") is True,
        )
