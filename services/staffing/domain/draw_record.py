"""What a team draw is asked, what it knew, and the record it leaves behind."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

# The stored shape of a record: 2 = rows (this module); records without a format are the
# pydantic objects of format 1, still read by the codec.
RECORD_FORMAT = 2


class Stage(enum.StrEnum):
    """The stage of a clue or case a team works."""

    VERIFICATION = "verification"
    INVESTIGATION = "investigation"
    HEARING = "hearing"
    REVIEW = "review"


# Hearing (审理) and review teams must be people who did not investigate or hear the case.
INDEPENDENT_STAGES = frozenset({Stage.HEARING, Stage.REVIEW})


class Pool(enum.StrEnum):
    """Whom a draw may pick from."""

    ZONE = "zone"
    COUNTY = "county"


class ExclusionReason(enum.StrEnum):
    """Why a person was not eligible, or left out by workload balance."""

    NOT_IN_POOL = "not_in_pool"
    SUBJECT_TOWNSHIP = "subject_township"
    EXCLUDED_BY_REQUEST = "excluded_by_request"
    WORKED_CASE_BEFORE = "worked_case_before"
    DECLARED_CONFLICT = "declared_conflict"
    RECUSED = "recused"
    UNAVAILABLE = "unavailable"
    OVER_WORKLOAD_CAP = "over_workload_cap"
    WORKLOAD_ABOVE_BALANCE = "workload_above_balance"


class DrawRequest(BaseModel):
    """What a team draw must satisfy (validated once, where a request enters the service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    case_id: str
    county_id: str
    zone_id: str
    stage: Stage
    subject_township_id: str
    subject_key: str
    team_size: int = Field(ge=1, le=20)
    # A joint case spans several townships: nobody from any of them may be drawn (异地办案).
    excluded_township_ids: tuple[str, ...] = ()
    required_skills: tuple[str, ...] = ()
    excluded_person_ids: tuple[str, ...] = ()
    pool: Pool = Pool.ZONE
    on_date: date


# The draw's hot path handles hundreds of these per draw: plain tuples are cheap to build,
# compare and encode (a tuple encodes as a compact JSON array in field order).
class CandidateFacts(NamedTuple):
    """What the draw knew about one person when it ran (kept so the draw can be replayed)."""

    person_id: str
    zone_id: str | None
    home_township_id: str | None
    case_working: bool
    skills: tuple[str, ...] = ()
    status: str = "active"
    open_workload: int = 0
    workload_cap: int = 3
    # The relation of a declared conflict with the subject in force on the draw date, if any.
    conflict: str | None = None
    recused: bool = False
    # Stages of this case the person already worked.
    worked_stages: tuple[str, ...] = ()


class Exclusion(NamedTuple):
    """One person left out, and why."""

    person_id: str
    reason: ExclusionReason
    detail: str


class FilterStage(NamedTuple):
    """Who was still in the running after one filter."""

    name: str
    remaining: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DrawOutcome:
    """The team (first member leads), or why none could be formed."""

    members: tuple[str, ...] = ()
    unfillable_reasons: tuple[str, ...] = ()

    @property
    def filled(self) -> bool:
        """Whether a team was drawn."""
        return bool(self.members)


@dataclass(frozen=True, slots=True)
class DrawRecord:
    """Everything needed to explain a draw and to recompute it."""

    draw_id: str
    request: DrawRequest
    algorithm_version: str
    rules_version: str
    max_workload_distance: int
    previous_hash: str
    seed: str
    candidates: tuple[CandidateFacts, ...]
    # The filter stages in the order they ran ("registered" first).
    stage_names: tuple[str, ...]
    exclusions: tuple[Exclusion, ...]
    outcome: DrawOutcome
    override_reason: str | None = None
    overridden_by: str | None = None
    # Format 1 stored who remained after each stage; newer records derive it (see `stages`).
    recorded_stages: tuple[FilterStage, ...] | None = None

    @property
    def stages(self) -> tuple[FilterStage, ...]:
        """Who was still in the running after each stage."""
        if self.recorded_stages is not None:
            return self.recorded_stages
        return filter_stages(self.candidates, self.exclusions, self.stage_names)

    def canonical_json(self) -> str:
        """The record's canonical text (format 2): what is stored and what its hash covers."""
        # Field order is fixed here and tuples encode as arrays, so equal records give equal
        # text; the candidates and exclusions, most of the record, are rows, not objects.
        return json.dumps(
            {
                "format": RECORD_FORMAT,
                "draw_id": self.draw_id,
                "request": self.request.model_dump(mode="json"),
                "algorithm_version": self.algorithm_version,
                "rules_version": self.rules_version,
                "max_workload_distance": self.max_workload_distance,
                "previous_hash": self.previous_hash,
                "seed": self.seed,
                "candidates": self.candidates,
                # Who remained after each stage follows from the candidates and exclusions.
                "stages": self.stage_names,
                "exclusions": self.exclusions,
                "outcome": [self.outcome.members, self.outcome.unfillable_reasons],
                "override_reason": self.override_reason,
                "overridden_by": self.overridden_by,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def record_hash(self) -> str:
        """sha256 of the canonical record: the next draw of the county chains from it."""
        return text_hash(self.canonical_json())


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Whether recomputing a record gave the same stages, exclusions and outcome."""

    matches: bool
    recomputed: DrawOutcome
    differences: tuple[str, ...] = ()


def text_hash(text: str) -> str:
    """sha256 of a stored record's text (how the chain links records)."""
    return hashlib.sha256(text.encode()).hexdigest()


def filter_stages(
    candidates: tuple[CandidateFacts, ...],
    exclusions: tuple[Exclusion, ...],
    names: tuple[str, ...],
) -> tuple[FilterStage, ...]:
    """Who remained after each named stage, derived from who was excluded by which stage."""
    position = {name: index for index, name in enumerate(names)}
    left_at = {exclusion.person_id: position[exclusion.reason.value] for exclusion in exclusions}
    ids = [person.person_id for person in candidates]
    out = len(names)
    last = [left_at.get(pid, out) for pid in ids]
    return tuple(
        FilterStage(name, tuple([pid for pid, at in zip(ids, last, strict=True) if at > index]))
        for index, name in enumerate(names)
    )
