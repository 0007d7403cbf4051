"""The team draw: eligibility filters, a workload-balanced lottery, and its replayable record."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from operator import attrgetter

from services.staffing.domain.draw_record import (
    INDEPENDENT_STAGES,
    CandidateFacts,
    DrawOutcome,
    DrawRecord,
    DrawRequest,
    Exclusion,
    ExclusionReason,
    FilterStage,
    Pool,
    ReplayResult,
    Stage,
    filter_stages,
)
from services.staffing.domain.draw_rules import DrawRules

__all__ = [
    "ALGORITHM_VERSION",
    "FILTERS",
    "GENESIS_HASH",
    "OVERRIDE_VERSION",
    "PASSED_EVERY_FILTER",
    "CandidateFacts",
    "DrawOutcome",
    "DrawRecord",
    "DrawRequest",
    "Exclusion",
    "ExclusionReason",
    "FilterStage",
    "Pool",
    "ReplayResult",
    "Stage",
    "draw_seed",
    "first_rejections",
    "lot",
    "override_record",
    "replay",
    "run_draw",
    "seed_is_genuine",
]

# Bump when the filters, their order, the lottery or the record change: a record is replayed
# only by an algorithm version that knows it. /2 draws exactly as /1 did and differs only in
# the stored record (format 2 rows instead of format 1 objects), so both replay here.
ALGORITHM_VERSION = "staffing-draw/lots-sha256-balanced/2"
REPLAYABLE_VERSIONS = frozenset({"staffing-draw/lots-sha256-balanced/1", ALGORITHM_VERSION})
# The first draw of a county chains from this instead of a previous draw's hash.
GENESIS_HASH = "0" * 64
# An override is recorded in the county's draw chain but is a decision, not a lottery.
OVERRIDE_VERSION = "staffing-override/1"


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
    if person.home_township_id in request.excluded_township_ids:
        return f"home township {person.home_township_id} is one of the joint case's (异地办案)"
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
    ordered = tuple(sorted(candidates, key=_BY_PERSON))
    if len({person.person_id for person in ordered}) != len(ordered):
        raise ValueError("each candidate is listed once")
    seed = draw_seed(request.request_id, previous_hash, county_secret)
    names, exclusions, outcome = _decide(request, ordered, seed, rules.max_workload_distance)
    return DrawRecord(
        draw_id=draw_id,
        request=request,
        algorithm_version=ALGORITHM_VERSION,
        rules_version=rules.version,
        max_workload_distance=rules.max_workload_distance,
        previous_hash=previous_hash,
        seed=seed,
        candidates=ordered,
        stage_names=names,
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
        stage_names=(),
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
    if record.algorithm_version not in REPLAYABLE_VERSIONS:
        return ReplayResult(
            matches=False,
            differences=(f"algorithm {record.algorithm_version} is not {ALGORITHM_VERSION}",),
            recomputed=DrawOutcome(),
        )
    names, exclusions, outcome = _decide(
        record.request, record.candidates, record.seed, record.max_workload_distance
    )
    differences = []
    if filter_stages(record.candidates, exclusions, names) != record.stages:
        differences.append("the candidates after each filter differ")
    if exclusions != record.exclusions:
        differences.append("the exclusions differ")
    if outcome != record.outcome:
        differences.append("the result differs")
    return ReplayResult(matches=not differences, differences=tuple(differences), recomputed=outcome)


def seed_is_genuine(record: DrawRecord, county_secret: str) -> bool:
    """Whether the record's seed is the one its request, chain position and secret imply."""
    return record.seed == draw_seed(record.request.request_id, record.previous_hash, county_secret)


_BY_PERSON = attrgetter("person_id")
_REASONS = tuple(reason for reason, _ in FILTERS)
PASSED_EVERY_FILTER = len(FILTERS)


def first_rejections(request: DrawRequest, candidates: tuple[CandidateFacts, ...]) -> list[int]:
    """Per candidate: index in FILTERS of the first filter rejecting them, or PASSED_EVERY_FILTER.

    The same tests as the FILTERS, inlined: the draw runs them for every person of the pool,
    and a function call per person and filter cost more than the draw's other steps together.
    Each rejection's detail is still written by the filter itself, which also checks this.
    """
    zone_pool = request.pool is Pool.ZONE
    zone = request.zone_id
    townships = frozenset((request.subject_township_id, *request.excluded_township_ids))
    excluded = frozenset(request.excluded_person_ids)
    independent = request.stage in INDEPENDENT_STAGES
    first: list[int] = []
    for pid, pzone, home, working, _, status, load, cap, conflict, recused, worked in candidates:
        if not working or (zone_pool and pzone != zone):
            first.append(0)
        elif home in townships:
            first.append(1)
        elif pid in excluded:
            first.append(2)
        elif independent and worked:
            first.append(3)
        elif conflict is not None:
            first.append(4)
        elif recused:
            first.append(5)
        elif status != "active":
            first.append(6)
        elif load >= cap:
            first.append(7)
        else:
            first.append(PASSED_EVERY_FILTER)
    return first


def _decide(
    request: DrawRequest,
    candidates: tuple[CandidateFacts, ...],
    seed: str,
    max_distance: int,
) -> tuple[tuple[str, ...], tuple[Exclusion, ...], DrawOutcome]:
    """The stages run, everyone excluded and the outcome (the stages' members are derived)."""
    first = first_rejections(request, candidates)
    # Exclusions are listed filter by filter, each in candidate order.
    rejected_by: list[list[Exclusion]] = [[] for _ in FILTERS]
    remaining: list[CandidateFacts] = []
    for person, index in zip(candidates, first, strict=True):
        if index == PASSED_EVERY_FILTER:
            remaining.append(person)
            continue
        detail = FILTERS[index][1](request, person)
        if detail is None:
            raise AssertionError(f"filter {_REASONS[index]} disagrees with the screen")
        rejected_by[index].append(Exclusion(person.person_id, _REASONS[index], detail))
    exclusions = [exclusion for group in rejected_by for exclusion in group]
    names = ("registered", *(reason.value for reason in _REASONS))

    reasons = _unfillable_reasons(request, remaining)
    if reasons:
        done = tuple(exclusions)
        return names, done, DrawOutcome(unfillable_reasons=reasons)

    # lot(seed, person) for each eligible person, without a call per person.
    prefix = f"{seed}|"
    sha256 = hashlib.sha256
    # Raw digests order exactly as their hex forms do.
    tickets = {p.person_id: sha256((prefix + p.person_id).encode()).digest() for p in remaining}
    balanced, left_out = _balance(request, remaining, tickets, max_distance)
    least = min(person.open_workload for person in remaining)
    for person in left_out:
        exclusions.append(
            Exclusion(
                person.person_id,
                ExclusionReason.WORKLOAD_ABOVE_BALANCE,
                f"open workload {person.open_workload} is more than {max_distance} "
                f"above the least-loaded eligible person ({least})",
            )
        )
    done = tuple(exclusions)
    names = (*names, ExclusionReason.WORKLOAD_ABOVE_BALANCE.value)
    balanced.sort(key=lambda person: tickets[person.person_id])
    team = _pick(request, balanced)
    if len(team) > request.team_size:
        needed = (
            f"covering the required skills takes {len(team)} people; "
            f"the team size is {request.team_size}"
        )
        return names, done, DrawOutcome(unfillable_reasons=(needed,))
    return names, done, DrawOutcome(members=tuple(team))


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
    tickets: dict[str, bytes],
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
