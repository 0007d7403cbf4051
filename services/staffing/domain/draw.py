"""The team draw: eligibility filters, a workload-balanced lottery, and its replayable record."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from services.staffing.domain.draw_rules import DrawRules

# Bump when the filters, their order or the lottery change: a record is replayed only by the
# algorithm version that made it.
ALGORITHM_VERSION = "staffing-draw/lots-sha256-balanced/1"
# The first draw of a county chains from this instead of a previous draw's hash.
GENESIS_HASH = "0" * 64
# An override is recorded in the county's draw chain but is a decision, not a lottery.
OVERRIDE_VERSION = "staffing-override/1"


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


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DrawRequest(_Frozen):
    """What a team draw must satisfy."""

    request_id: str
    case_id: str
    county_id: str
    zone_id: str
    stage: Stage
    subject_township_id: str
    subject_key: str
    team_size: int = Field(ge=1, le=20)
    required_skills: tuple[str, ...] = ()
    excluded_person_ids: tuple[str, ...] = ()
    pool: Pool = Pool.ZONE
    on_date: date


class CandidateFacts(_Frozen):
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


class Exclusion(_Frozen):
    """One person left out, and why."""

    person_id: str
    reason: ExclusionReason
    detail: str


class FilterStage(_Frozen):
    """Who was still in the running after one filter."""

    name: str
    remaining: tuple[str, ...]


class DrawOutcome(_Frozen):
    """The team (first member leads), or why none could be formed."""

    members: tuple[str, ...] = ()
    unfillable_reasons: tuple[str, ...] = ()

    @property
    def filled(self) -> bool:
        """Whether a team was drawn."""
        return bool(self.members)


class DrawRecord(_Frozen):
    """Everything needed to explain a draw and to recompute it."""

    draw_id: str
    request: DrawRequest
    algorithm_version: str
    rules_version: str
    max_workload_distance: int
    previous_hash: str
    seed: str
    candidates: tuple[CandidateFacts, ...]
    stages: tuple[FilterStage, ...]
    exclusions: tuple[Exclusion, ...]
    outcome: DrawOutcome
    override_reason: str | None = None
    overridden_by: str | None = None

    def record_hash(self) -> str:
        """sha256 of the canonical record: the next draw of the county chains from it."""
        # Field order is fixed by the model, so the JSON is canonical for an algorithm version.
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class ReplayResult(_Frozen):
    """Whether recomputing a record gave the same stages, exclusions and outcome."""

    matches: bool
    differences: tuple[str, ...] = ()
    recomputed: DrawOutcome


def draw_seed(request_id: str, previous_hash: str, county_secret: str) -> str:
    """The seed, fixed before the draw from data nobody can choose after seeing the result."""
    return hashlib.sha256(f"{request_id}|{previous_hash}|{county_secret}".encode()).hexdigest()


def lot(seed: str, person_id: str) -> str:
    """A person's lottery ticket: lower tickets are drawn first."""
    return hashlib.sha256(f"{seed}|{person_id}".encode()).hexdigest()


_Filter = Callable[[DrawRequest, CandidateFacts], str | None]


def _pool(request: DrawRequest, person: CandidateFacts) -> str | None:
    if not person.case_working:
        return "holds no case-working role"
    if request.pool is Pool.ZONE and person.zone_id != request.zone_id:
        return f"zone {person.zone_id or 'county'} is outside the zone pool {request.zone_id}"
    return None


def _subject_township(request: DrawRequest, person: CandidateFacts) -> str | None:
    if person.home_township_id == request.subject_township_id:
        return f"home township {person.home_township_id} is the subject's (异地办案)"
    return None


def _excluded_by_request(request: DrawRequest, person: CandidateFacts) -> str | None:
    if person.person_id in request.excluded_person_ids:
        return "excluded by the request"
    return None


def _worked_case_before(request: DrawRequest, person: CandidateFacts) -> str | None:
    if request.stage in INDEPENDENT_STAGES and person.worked_stages:
        return f"already worked this case ({', '.join(sorted(person.worked_stages))})"
    return None


def _declared_conflict(request: DrawRequest, person: CandidateFacts) -> str | None:
    if person.conflict is not None:
        return f"declared conflict with the subject: {person.conflict}"
    return None


def _recused(request: DrawRequest, person: CandidateFacts) -> str | None:
    return "recused from this case" if person.recused else None


def _unavailable(request: DrawRequest, person: CandidateFacts) -> str | None:
    if person.status != "active":
        return f"{person.status} on {request.on_date.isoformat()}"
    return None


def _over_cap(request: DrawRequest, person: CandidateFacts) -> str | None:
    if person.open_workload >= person.workload_cap:
        return f"open workload {person.open_workload} reaches the cap {person.workload_cap}"
    return None


# The order is part of the algorithm version: a person is recorded under the first filter
# that rejects them.
FILTERS: tuple[tuple[ExclusionReason, _Filter], ...] = (
    (ExclusionReason.NOT_IN_POOL, _pool),
    (ExclusionReason.SUBJECT_TOWNSHIP, _subject_township),
    (ExclusionReason.EXCLUDED_BY_REQUEST, _excluded_by_request),
    (ExclusionReason.WORKED_CASE_BEFORE, _worked_case_before),
    (ExclusionReason.DECLARED_CONFLICT, _declared_conflict),
    (ExclusionReason.RECUSED, _recused),
    (ExclusionReason.UNAVAILABLE, _unavailable),
    (ExclusionReason.OVER_WORKLOAD_CAP, _over_cap),
)


def run_draw(
    *,
    draw_id: str,
    request: DrawRequest,
    candidates: Iterable[CandidateFacts],
    rules: DrawRules,
    previous_hash: str,
    county_secret: str,
) -> DrawRecord:
    """Draw a team for `request` and return the full record of how it was drawn."""
    ordered = tuple(sorted(candidates, key=lambda person: person.person_id))
    seed = draw_seed(request.request_id, previous_hash, county_secret)
    stages, exclusions, outcome = _decide(request, ordered, seed, rules.max_workload_distance)
    return DrawRecord(
        draw_id=draw_id,
        request=request,
        algorithm_version=ALGORITHM_VERSION,
        rules_version=rules.version,
        max_workload_distance=rules.max_workload_distance,
        previous_hash=previous_hash,
        seed=seed,
        candidates=ordered,
        stages=stages,
        exclusions=exclusions,
        outcome=outcome,
    )


def override_record(
    *,
    draw_id: str,
    request: DrawRequest,
    members: tuple[str, ...],
    previous_hash: str,
    reason: str,
    overridden_by: str,
) -> DrawRecord:
    """A zone chief's override as a record in the draw chain (it has no seed to replay)."""
    if not reason.strip():
        raise ValueError("an override needs a reason")
    if not members or len(set(members)) != len(members):
        raise ValueError("an override names each member once")
    return DrawRecord(
        draw_id=draw_id,
        request=request,
        algorithm_version=OVERRIDE_VERSION,
        rules_version="",
        max_workload_distance=0,
        previous_hash=previous_hash,
        seed="",
        candidates=(),
        stages=(),
        exclusions=(),
        outcome=DrawOutcome(members=members),
        override_reason=reason.strip(),
        overridden_by=overridden_by,
    )


def replay(record: DrawRecord) -> ReplayResult:
    """Recompute a recorded draw from its own inputs and say whether it comes out the same."""
    if record.algorithm_version == OVERRIDE_VERSION:
        return ReplayResult(
            matches=False,
            differences=("an override is a recorded decision, not a draw to recompute",),
            recomputed=DrawOutcome(),
        )
    if record.algorithm_version != ALGORITHM_VERSION:
        return ReplayResult(
            matches=False,
            differences=(f"algorithm {record.algorithm_version} is not {ALGORITHM_VERSION}",),
            recomputed=DrawOutcome(),
        )
    stages, exclusions, outcome = _decide(
        record.request, record.candidates, record.seed, record.max_workload_distance
    )
    differences = []
    if stages != record.stages:
        differences.append("the candidates after each filter differ")
    if exclusions != record.exclusions:
        differences.append("the exclusions differ")
    if outcome != record.outcome:
        differences.append("the result differs")
    return ReplayResult(matches=not differences, differences=tuple(differences), recomputed=outcome)


def seed_is_genuine(record: DrawRecord, county_secret: str) -> bool:
    """Whether the record's seed is the one its request, chain position and secret imply."""
    return record.seed == draw_seed(record.request.request_id, record.previous_hash, county_secret)


def _decide(
    request: DrawRequest,
    candidates: tuple[CandidateFacts, ...],
    seed: str,
    max_distance: int,
) -> tuple[tuple[FilterStage, ...], tuple[Exclusion, ...], DrawOutcome]:
    exclusions: list[Exclusion] = []
    stages: list[FilterStage] = [
        FilterStage(name="registered", remaining=tuple(p.person_id for p in candidates))
    ]
    remaining = list(candidates)
    for reason, check in FILTERS:
        kept = []
        for person in remaining:
            detail = check(request, person)
            if detail is None:
                kept.append(person)
            else:
                # Internal, already-typed values: skip re-validation on the hot path.
                exclusions.append(
                    Exclusion.model_construct(
                        person_id=person.person_id, reason=reason, detail=detail
                    )
                )
        remaining = kept
        stages.append(
            FilterStage.model_construct(
                name=reason.value, remaining=tuple([p.person_id for p in kept])
            )
        )

    reasons = _unfillable_reasons(request, remaining)
    if reasons:
        return tuple(stages), tuple(exclusions), DrawOutcome(unfillable_reasons=reasons)

    tickets = {person.person_id: lot(seed, person.person_id) for person in remaining}
    balanced, left_out = _balance(request, remaining, tickets, max_distance)
    least = min(person.open_workload for person in remaining)
    for person in left_out:
        exclusions.append(
            Exclusion(
                person_id=person.person_id,
                reason=ExclusionReason.WORKLOAD_ABOVE_BALANCE,
                detail=(
                    f"open workload {person.open_workload} is more than {max_distance} "
                    f"above the least-loaded eligible person ({least})"
                ),
            )
        )
    balanced.sort(key=lambda person: tickets[person.person_id])
    stages.append(
        FilterStage(
            name=ExclusionReason.WORKLOAD_ABOVE_BALANCE.value,
            remaining=tuple(sorted(p.person_id for p in balanced)),
        )
    )
    team = _pick(request, balanced)
    if len(team) > request.team_size:
        needed = (
            f"covering the required skills takes {len(team)} people; "
            f"the team size is {request.team_size}"
        )
        return tuple(stages), tuple(exclusions), DrawOutcome(unfillable_reasons=(needed,))
    return tuple(stages), tuple(exclusions), DrawOutcome(members=tuple(team))


def _unfillable_reasons(request: DrawRequest, eligible: list[CandidateFacts]) -> tuple[str, ...]:
    reasons = []
    if len(eligible) < request.team_size:
        reasons.append(f"only {len(eligible)} eligible people for a team of {request.team_size}")
    held = {skill for person in eligible for skill in person.skills}
    for skill in sorted(set(request.required_skills) - held):
        reasons.append(f"no eligible person has the required skill {skill!r}")
    return tuple(reasons)


def _balance(
    request: DrawRequest,
    eligible: list[CandidateFacts],
    tickets: dict[str, str],
    max_distance: int,
) -> tuple[list[CandidateFacts], list[CandidateFacts]]:
    """Split into those within the distance of the least loaded and those left out.

    Those above the distance come back, least loaded (then lowest ticket) first, only when the
    team or a required skill cannot be covered without them.
    """
    least = min(person.open_workload for person in eligible)
    within = [p for p in eligible if p.open_workload <= least + max_distance]
    beyond = sorted(
        (p for p in eligible if p.open_workload > least + max_distance),
        key=lambda person: (person.open_workload, tickets[person.person_id]),
    )
    shortfall = request.team_size - len(within)
    if shortfall > 0:
        within.extend(beyond[:shortfall])
        beyond = beyond[shortfall:]
    held = {skill for person in within for skill in person.skills}
    for skill in sorted(set(request.required_skills) - held):
        if skill in held:
            continue
        holder = next(person for person in beyond if skill in person.skills)
        within.append(holder)
        beyond.remove(holder)
        held |= set(holder.skills)
    return within, beyond


def _pick(request: DrawRequest, balanced: list[CandidateFacts]) -> list[str]:
    """Cover the required skills first (most uncovered skills, then lowest ticket), then fill."""
    team: list[str] = []
    chosen: set[str] = set()
    uncovered = set(request.required_skills)
    while uncovered:
        best, best_cover = None, 0
        for person in balanced:
            if person.person_id in chosen:
                continue
            cover = len(uncovered.intersection(person.skills))
            if cover > best_cover:
                best, best_cover = person, cover
        if best is None:
            break
        team.append(best.person_id)
        chosen.add(best.person_id)
        uncovered -= set(best.skills)
    for person in balanced:
        if len(team) >= request.team_size:
            break
        if person.person_id not in chosen:
            team.append(person.person_id)
            chosen.add(person.person_id)
    return team
