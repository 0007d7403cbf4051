"""Declared conflicts of interest and recusal (回避) requests and decisions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class ConflictRelation(enum.StrEnum):
    """Why a person must not work matters concerning a party."""

    CLOSE_RELATIVE_OF_SUBJECT = "close_relative_of_subject"
    CLOSE_RELATIVE_OF_REPORTER = "close_relative_of_reporter"
    WITNESS = "witness"
    INTEREST_IN_MATTER = "interest_in_matter"
    PRIOR_POSTING = "prior_posting"
    OTHER = "other"


@dataclass(frozen=True)
class ConflictDeclaration:
    """A person's declared relationship to a party (by the party's stable key, never a name)."""

    conflict_id: str
    person_id: str
    party_key: str
    relation: ConflictRelation
    valid_from: date
    valid_until: date | None = None

    def applies(self, party_key: str, day: date) -> bool:
        """Whether the declaration concerns `party_key` on `day`."""
        if party_key != self.party_key or day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until


class RecusalRaisedBy(enum.StrEnum):
    """Who asked for the recusal."""

    STAFF_MEMBER = "staff_member"
    SUBJECT = "subject"
    REPORTER = "reporter"


class RecusalState(enum.StrEnum):
    """Where a recusal request stands."""

    REQUESTED = "requested"
    GRANTED = "granted"
    REFUSED = "refused"


@dataclass(frozen=True)
class RecusalRequest:
    """A request that a person stand aside from one case."""

    recusal_id: str
    county_id: str
    zone_id: str
    case_id: str
    person_id: str
    ground: ConflictRelation
    raised_by: RecusalRaisedBy
    state: RecusalState = RecusalState.REQUESTED

    def decide(self, *, granted: bool) -> RecusalRequest:
        """The request decided; a decided request cannot be decided again."""
        if self.state is not RecusalState.REQUESTED:
            raise ValueError(f"recusal {self.recusal_id} is already {self.state.value}")
        state = RecusalState.GRANTED if granted else RecusalState.REFUSED
        return RecusalRequest(
            recusal_id=self.recusal_id,
            county_id=self.county_id,
            zone_id=self.zone_id,
            case_id=self.case_id,
            person_id=self.person_id,
            ground=self.ground,
            raised_by=self.raised_by,
            state=state,
        )
