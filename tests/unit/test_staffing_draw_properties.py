"""Property tests of the team draw: never ineligible, always replayable, balanced over time."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from services.staffing.domain.draw import (
    FILTERS,
    GENESIS_HASH,
    CandidateFacts,
    DrawRequest,
    Pool,
    Stage,
    replay,
    run_draw,
)
from services.staffing.domain.draw_rules import DrawRules

SKILLS = ("law", "finance_audit", "engineering", "interviewing")


@st.composite
def candidates(draw: st.DrawFn) -> CandidateFacts:
    """Any person, eligible or not."""
    return CandidateFacts(
        person_id=draw(st.text("abcdefgh", min_size=3, max_size=6)),
        zone_id=draw(st.sampled_from(["z-1", "z-2", None])),
        home_township_id=draw(st.sampled_from(["t-1", "t-2", "t-3", None])),
        case_working=draw(st.booleans()),
        skills=tuple(draw(st.lists(st.sampled_from(SKILLS), max_size=2, unique=True))),
        status=draw(st.sampled_from(["active", "active", "on_leave", "in_training"])),
        open_workload=draw(st.integers(0, 5)),
        workload_cap=draw(st.integers(1, 5)),
        conflict=draw(st.sampled_from([None, None, "witness"])),
        recused=draw(st.booleans()),
        worked_stages=tuple(draw(st.lists(st.sampled_from(["investigation"]), max_size=1))),
    )


@st.composite
def requests(draw: st.DrawFn) -> DrawRequest:
    """Any request about a subject in township t-1 of zone z-1."""
    return DrawRequest(
        request_id=draw(st.text(min_size=1, max_size=10)),
        case_id="case-1",
        county_id="c-1",
        zone_id="z-1",
        stage=draw(st.sampled_from(list(Stage))),
        subject_township_id="t-1",
        subject_key="subj",
        team_size=draw(st.integers(1, 4)),
        required_skills=tuple(draw(st.lists(st.sampled_from(SKILLS), max_size=2, unique=True))),
        excluded_person_ids=tuple(draw(st.lists(st.text("abc", min_size=3, max_size=3)))),
        pool=draw(st.sampled_from(list(Pool))),
        on_date=date(2026, 3, 1),
    )


def unique_people(people: list[CandidateFacts]) -> list[CandidateFacts]:
    """One fact row per person id."""
    return list({person.person_id: person for person in people}.values())


@settings(max_examples=300, deadline=None)
@given(requests(), st.lists(candidates(), max_size=30), st.integers(0, 3))
def test_a_draw_never_picks_an_ineligible_person_and_always_replays(
    req: DrawRequest, people: list[CandidateFacts], distance: int
) -> None:
    rules = DrawRules(version="p", effective_from=date(2026, 1, 1), max_workload_distance=distance)
    people = unique_people(people)
    record = run_draw(
        draw_id="d",
        request=req,
        candidates=people,
        rules=rules,
        previous_hash=GENESIS_HASH,
        county_secret="s",
    )
    by_id = {person.person_id: person for person in people}
    members = record.outcome.members
    assert len(set(members)) == len(members)
    if record.outcome.filled:
        assert len(members) == req.team_size
        for member in members:
            assert all(check(req, by_id[member]) is None for _, check in FILTERS)
        covered = {skill for member in members for skill in by_id[member].skills}
        assert set(req.required_skills) <= covered
    else:
        assert record.outcome.unfillable_reasons
    assert replay(record).matches


@settings(max_examples=60, deadline=None)
@given(
    st.integers(4, 30),
    st.integers(1, 3),
    st.integers(0, 3),
    st.lists(st.text(min_size=1, max_size=8), min_size=20, max_size=60, unique=True),
)
def test_workload_spread_stays_within_the_distance_across_many_draws(
    pool_size: int, team_size: int, distance: int, request_ids: list[str]
) -> None:
    """Each draw adds one assignment per member: the spread never exceeds distance + 1."""
    rules = DrawRules(version="p", effective_from=date(2026, 1, 1), max_workload_distance=distance)
    load = {f"p{i:02d}": 0 for i in range(pool_size)}
    previous = GENESIS_HASH
    for request_id in request_ids:
        people = [
            CandidateFacts(
                person_id=pid,
                zone_id="z-1",
                home_township_id="t-2",
                case_working=True,
                open_workload=load[pid],
                workload_cap=10_000,
            )
            for pid in load
        ]
        req = DrawRequest(
            request_id=request_id,
            case_id=request_id,
            county_id="c-1",
            zone_id="z-1",
            stage=Stage.INVESTIGATION,
            subject_township_id="t-1",
            subject_key="subj",
            team_size=team_size,
            on_date=date(2026, 3, 1),
        )
        record = run_draw(
            draw_id=request_id,
            request=req,
            candidates=people,
            rules=rules,
            previous_hash=previous,
            county_secret="s",
        )
        previous = record.record_hash()
        for member in record.outcome.members:
            load[member] += 1
        assert max(load.values()) - min(load.values()) <= distance + 1
