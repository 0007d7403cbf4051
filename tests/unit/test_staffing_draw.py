"""The team draw: every exclusion reason, balance, skills, seed and replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.staffing.domain.draw import (
    ALGORITHM_VERSION,
    GENESIS_HASH,
    CandidateFacts,
    DrawRecord,
    DrawRequest,
    ExclusionReason,
    Pool,
    Stage,
    draw_seed,
    replay,
    run_draw,
    seed_is_genuine,
)
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES, DrawRules

RULES = DrawRules(version="test-1", effective_from=date(2026, 1, 1), max_workload_distance=1)


def request(**overrides: object) -> DrawRequest:
    """A zone-pool investigation request about a subject in township t-1 of zone z-1."""
    values: dict[str, object] = {
        "request_id": "req-1",
        "case_id": "case-1",
        "county_id": "c-1",
        "zone_id": "z-1",
        "stage": Stage.INVESTIGATION,
        "subject_township_id": "t-1",
        "subject_key": "subj-1",
        "team_size": 1,
        "on_date": date(2026, 3, 1),
    }
    values.update(overrides)
    return DrawRequest.model_validate(values)


def person(person_id: str, **overrides: object) -> CandidateFacts:
    """An eligible case worker of zone z-1 from township t-2."""
    values: dict[str, object] = {
        "person_id": person_id,
        "zone_id": "z-1",
        "home_township_id": "t-2",
        "case_working": True,
    }
    values.update(overrides)
    return CandidateFacts(**values)  # type: ignore[arg-type]


def draw(req: DrawRequest, people: list[CandidateFacts], rules: DrawRules = RULES) -> DrawRecord:
    """Run a draw with a fixed chain position and secret."""
    return run_draw(
        draw_id="d-1",
        request=req,
        candidates=people,
        rules=rules,
        previous_hash=GENESIS_HASH,
        county_secret="secret",
    )


def reasons(record: DrawRecord) -> dict[str, ExclusionReason]:
    """Each excluded person's reason."""
    return {exclusion.person_id: exclusion.reason for exclusion in record.exclusions}


@pytest.mark.parametrize(
    ("req_overrides", "facts", "reason"),
    [
        ({}, {"case_working": False}, ExclusionReason.NOT_IN_POOL),
        ({}, {"zone_id": "z-2"}, ExclusionReason.NOT_IN_POOL),
        ({}, {"home_township_id": "t-1"}, ExclusionReason.SUBJECT_TOWNSHIP),
        ({"excluded_person_ids": ("bad",)}, {}, ExclusionReason.EXCLUDED_BY_REQUEST),
        (
            {"stage": Stage.HEARING},
            {"worked_stages": ("investigation",)},
            ExclusionReason.WORKED_CASE_BEFORE,
        ),
        (
            {"stage": Stage.REVIEW},
            {"worked_stages": ("hearing",)},
            ExclusionReason.WORKED_CASE_BEFORE,
        ),
        ({}, {"conflict": "close_relative_of_subject"}, ExclusionReason.DECLARED_CONFLICT),
        ({}, {"recused": True}, ExclusionReason.RECUSED),
        ({}, {"status": "on_leave"}, ExclusionReason.UNAVAILABLE),
        ({}, {"status": "in_training"}, ExclusionReason.UNAVAILABLE),
        ({}, {"open_workload": 3, "workload_cap": 3}, ExclusionReason.OVER_WORKLOAD_CAP),
    ],
)
def test_each_exclusion_reason_is_recorded(
    req_overrides: dict[str, object], facts: dict[str, object], reason: ExclusionReason
) -> None:
    record = draw(request(**req_overrides), [person("bad", **facts), person("good")])
    assert record.outcome.members == ("good",)
    assert reasons(record) == {"bad": reason}
    stage = next(stage for stage in record.stages if stage.name == reason.value)
    assert stage.remaining == ("good",)
    assert record.exclusions[0].detail


def test_the_zone_pool_excludes_other_zones_but_the_county_pool_does_not() -> None:
    people = [person("near"), person("far", zone_id="z-2")]
    assert draw(request(team_size=2), people).outcome.filled is False
    assert set(draw(request(team_size=2, pool=Pool.COUNTY), people).outcome.members) == {
        "near",
        "far",
    }


def test_investigators_may_continue_at_investigation_but_not_at_hearing() -> None:
    veteran = person("veteran", worked_stages=("verification",))
    assert draw(request(stage=Stage.INVESTIGATION), [veteran]).outcome.members == ("veteran",)
    assert not draw(request(stage=Stage.HEARING), [veteran]).outcome.filled


def test_workload_balance_leaves_out_the_busy_unless_too_few_remain() -> None:
    people = [person("idle"), person("busy", open_workload=2), person("mid", open_workload=1)]
    record = draw(request(team_size=2), people)
    assert set(record.outcome.members) == {"idle", "mid"}
    assert reasons(record) == {"busy": ExclusionReason.WORKLOAD_ABOVE_BALANCE}
    # A team of three needs the busy person back.
    assert set(draw(request(team_size=3), people).outcome.members) == {"idle", "mid", "busy"}


def test_a_required_skill_brings_back_a_busy_holder() -> None:
    people = [person("idle"), person("auditor", open_workload=2, skills=("finance_audit",))]
    record = draw(request(required_skills=("finance_audit",)), people)
    assert record.outcome.members == ("auditor",)


def test_required_skills_are_covered_by_the_team_as_a_whole() -> None:
    people = [
        person("law", skills=("law",)),
        person("audit", skills=("finance_audit",)),
        *(person(f"p{i}") for i in range(10)),
    ]
    record = draw(request(team_size=3, required_skills=("law", "finance_audit")), people)
    assert {"law", "audit"} <= set(record.outcome.members)
    assert len(record.outcome.members) == 3


def test_unfillable_says_why() -> None:
    record = draw(request(team_size=3, required_skills=("engineering",)), [person("a")])
    assert record.outcome.filled is False
    assert record.outcome.unfillable_reasons == (
        "only 1 eligible people for a team of 3",
        "no eligible person has the required skill 'engineering'",
    )
    too_many = draw(
        request(team_size=1, required_skills=("law", "engineering")),
        [person("a", skills=("law",)), person("b", skills=("engineering",))],
    )
    assert too_many.outcome.unfillable_reasons == (
        "covering the required skills takes 2 people; the team size is 1",
    )


def test_the_seed_is_fixed_by_request_chain_and_secret() -> None:
    record = draw(request(), [person("a"), person("b")])
    assert record.seed == draw_seed("req-1", GENESIS_HASH, "secret")
    assert seed_is_genuine(record, "secret")
    assert not seed_is_genuine(record, "another secret")
    assert record.algorithm_version == ALGORITHM_VERSION
    assert record.rules_version == "test-1"


def test_the_draw_does_not_depend_on_the_order_candidates_arrive_in() -> None:
    people = [person(f"p{i}") for i in range(20)]
    forward = draw(request(team_size=3), people)
    backward = draw(request(team_size=3), list(reversed(people)))
    assert forward == backward
    assert forward.record_hash() == backward.record_hash()


def test_replay_reproduces_and_detects_tampering() -> None:
    record = draw(request(team_size=2), [person(f"p{i}") for i in range(8)])
    assert replay(record).matches
    others = tuple(p for p in ("p0", "p1", "p2") if p not in record.outcome.members)
    forged = replace(record, outcome=replace(record.outcome, members=others[:2]))
    result = replay(forged)
    assert not result.matches
    assert result.differences == ("the result differs",)
    assert result.recomputed == record.outcome
    assert not replay(replace(record, algorithm_version="other/9")).matches


def test_the_default_rules_are_versioned_data() -> None:
    assert DEFAULT_DRAW_RULES.version
    assert DEFAULT_DRAW_RULES.max_workload_distance >= 0


def test_a_joint_case_excludes_staff_from_every_one_of_its_townships() -> None:
    people = [
        person("own", home_township_id="t-1"),
        person("joint", home_township_id="t-3"),
        person("free", home_township_id="t-2"),
    ]
    record = draw(request(excluded_township_ids=("t-3",)), people)
    assert record.outcome.members == ("free",)
    assert reasons(record) == {
        "own": ExclusionReason.SUBJECT_TOWNSHIP,
        "joint": ExclusionReason.SUBJECT_TOWNSHIP,
    }
    assert replay(record).matches
