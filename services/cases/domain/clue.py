"""A clue (线索) from registration until it is disposed of."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.cases.domain.ruleset import RuleSet


class ClueStatus(enum.StrEnum):
    """Where a clue stands in the workflow."""

    REGISTERED = "registered"
    DISPOSAL_PROPOSED = "disposal_proposed"
    INQUIRY = "inquiry"
    PRELIMINARY_VERIFICATION = "preliminary_verification"
    STORED_PENDING = "stored_pending"
    CLOSED = "closed"
    CASE_FILED = "case_filed"
    # Closed into another clue as its duplicate (重复线索并案).
    LINKED_DUPLICATE = "linked_duplicate"


# Workflow stages before filing, as the clue ledger names them; every later stage is a case.
_STAGE_STATUS = {
    "registered": ClueStatus.REGISTERED,
    "disposal_proposed": ClueStatus.DISPOSAL_PROPOSED,
    "inquiry": ClueStatus.INQUIRY,
    "verification": ClueStatus.PRELIMINARY_VERIFICATION,
    "verification_proposed": ClueStatus.PRELIMINARY_VERIFICATION,
    "filing_proposed": ClueStatus.PRELIMINARY_VERIFICATION,
    "stored_pending": ClueStatus.STORED_PENDING,
    "closed": ClueStatus.CLOSED,
}


def clue_status(stage: str, *, duplicate: bool = False) -> ClueStatus:
    """Where the clue stands, given its case file's workflow stage."""
    if duplicate:
        return ClueStatus.LINKED_DUPLICATE
    return _STAGE_STATUS.get(stage, ClueStatus.CASE_FILED)


@dataclass(frozen=True)
class NewClue:
    """The facts cases needs to register a clue and start its disposal clock."""

    clue_id: str
    county_id: str
    zone_id: str
    township_id: str
    source_report_id: str
    channel: str
    allegation_categories: tuple[str, ...]
    subject_cadre_level: str
    real_name: bool
    registered_at: datetime


def disposal_due(clue: NewClue, rules: RuleSet) -> datetime:
    """When the clue must have been disposed of (处置), under the rules it started with."""
    # The disposal time limit itself (on the county's dates): the clue's due moment and its
    # disposal deadline's are one moment, so a batch may reckon it once for both rows.
    return rules.due("disposal", clue.registered_at)
