"""Team-draw benchmark: one draw in a zone of 500 staff with 2,000 declared conflicts (JSON)."""

from __future__ import annotations

import json
import random
import statistics
import time
from datetime import date

from services.staffing.domain.conflicts import ConflictDeclaration, ConflictRelation
from services.staffing.domain.draw import (
    ALGORITHM_VERSION,
    GENESIS_HASH,
    CandidateFacts,
    DrawRequest,
    Stage,
    replay,
    run_draw,
)
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES

STAFF = 500
CONFLICTS = 2_000
SUBJECTS = 400
DRAWS = 2_000
SKILLS = ("law", "finance_audit", "engineering", "interviewing", "evidence_handling")
ON = date(2026, 3, 2)


def _zone(rng: random.Random) -> tuple[list[CandidateFacts], list[ConflictDeclaration]]:
    people = [
        CandidateFacts(
            person_id=f"p-{i:04d}",
            zone_id="z-1",
            home_township_id=f"t-{i % 6}",
            case_working=True,
            skills=tuple(sorted(rng.sample(SKILLS, rng.randint(0, 2)))),
            status="active" if rng.random() > 0.05 else "on_leave",
            open_workload=rng.randint(0, 3),
            workload_cap=4,
        )
        for i in range(STAFF)
    ]
    relations = list(ConflictRelation)
    conflicts = [
        ConflictDeclaration(
            conflict_id=f"k-{i}",
            person_id=f"p-{rng.randrange(STAFF):04d}",
            party_key=f"subject-{rng.randrange(SUBJECTS)}",
            relation=rng.choice(relations),
            valid_from=date(2025, 1, 1),
        )
        for i in range(CONFLICTS)
    ]
    return people, conflicts


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run the draws and print draws/s and latency percentiles in milliseconds."""
    rng = random.Random(7)
    people, conflicts = _zone(rng)
    by_party: dict[str, list[ConflictDeclaration]] = {}
    for conflict in conflicts:
        by_party.setdefault(conflict.party_key, []).append(conflict)
    # Loaded once per zone, as the store does; the conflicts are matched per draw.
    zone_facts = people
    previous = GENESIS_HASH
    latencies: list[float] = []
    replays: list[float] = []
    started = time.perf_counter()
    for n in range(DRAWS):
        subject = f"subject-{rng.randrange(SUBJECTS)}"
        request = DrawRequest(
            request_id=f"req-{n}",
            case_id=f"case-{n}",
            county_id="c-1",
            zone_id="z-1",
            stage=Stage.INVESTIGATION,
            subject_township_id=f"t-{n % 6}",
            subject_key=subject,
            team_size=3,
            required_skills=("law", "finance_audit"),
            on_date=ON,
        )
        begin = time.perf_counter()
        # The draw itself: matching the subject against the declared conflicts, the filters,
        # the balance and the lottery, and building its record.
        conflicted = {
            c.person_id: c.relation.value
            for c in by_party.get(subject, ())
            if c.applies(subject, ON)
        }
        candidates = [
            fact._replace(conflict=conflicted[fact.person_id])
            if fact.person_id in conflicted
            else fact
            for fact in zone_facts
        ]
        record = run_draw(
            draw_id=f"d-{n}",
            request=request,
            candidates=candidates,
            rules=DEFAULT_DRAW_RULES,
            previous_hash=previous,
            county_secret="bench",
        )
        previous = record.record_hash()
        latencies.append(time.perf_counter() - begin)
        if n % 20 == 0:
            replay_begin = time.perf_counter()
            assert replay(record).matches
            replays.append(time.perf_counter() - replay_begin)
    elapsed = time.perf_counter() - started
    ms = [value * 1000 for value in latencies]
    print(
        json.dumps(
            {
                "benchmark": "staffing.draw",
                "staff_in_zone": STAFF,
                "declared_conflicts": CONFLICTS,
                "draws": DRAWS,
                "team_size": 3,
                "draws_per_second": round(DRAWS / elapsed, 1),
                "draw_ms": {
                    "p50": round(statistics.median(ms), 3),
                    "p99": round(_percentile(ms, 0.99), 3),
                    "max": round(max(ms), 3),
                },
                "replay_ms_p50": round(statistics.median(replays) * 1000, 3),
                "target_p99_ms": 5.0,
                "algorithm_version": ALGORITHM_VERSION,
                "note": "draw = conflict matching + filters + balance + lottery + record hash",
            }
        )
    )


if __name__ == "__main__":
    main()
