"""Stored draw records: the compact format round-trips, and format-1 records still replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.staffing.domain.draw import (
    ALGORITHM_VERSION,
    FILTERS,
    GENESIS_HASH,
    PASSED_EVERY_FILTER,
    CandidateFacts,
    DrawRequest,
    Stage,
    first_rejections,
    replay,
    run_draw,
)
from services.staffing.domain.draw_codec import decode_record
from services.staffing.domain.draw_record import text_hash
from services.staffing.domain.draw_rules import DrawRules
from tests.unit.test_staffing_draw_properties import candidates, requests, unique_people

# A hearing draw recorded by algorithm /1 (pydantic objects), and the hash its chain holds.
FORMAT_1_RECORD = (
    '{"draw_id":"d-v1","request":{"request_id":"req-v1","case_id":"case-1","county_id":"c-1",'
    '"zone_id":"z-1","stage":"hearing","subject_township_id":"t-1","subject_key":"subj-1","te'
    'am_size":2,"required_skills":["law"],"excluded_person_ids":[],"pool":"zone","on_date":"2'
    '026-03-01"},"algorithm_version":"staffing-draw/lots-sha256-balanced/1","rules_version":"'
    'test-1","max_workload_distance":1,"previous_hash":"0000000000000000000000000000000000000'
    '000000000000000000000000000","seed":"36afa047d0d87168df2ee52cd779548f9ec719e8f7421dcd2ed'
    '1906d5722d24c","candidates":[{"person_id":"a","zone_id":"z-1","home_township_id":"t-2","'
    'case_working":true,"skills":["law"],"status":"active","open_workload":2,"workload_cap":3'
    ',"conflict":null,"recused":false,"worked_stages":[]},{"person_id":"b","zone_id":"z-1","h'
    'ome_township_id":"t-2","case_working":true,"skills":[],"status":"active","open_workload"'
    ':0,"workload_cap":3,"conflict":null,"recused":false,"worked_stages":[]},{"person_id":"c"'
    ',"zone_id":"z-1","home_township_id":"t-1","case_working":true,"skills":[],"status":"acti'
    've","open_workload":0,"workload_cap":3,"conflict":null,"recused":false,"worked_stages":['
    ']},{"person_id":"d","zone_id":"z-1","home_township_id":"t-2","case_working":true,"skills'
    '":[],"status":"active","open_workload":0,"workload_cap":3,"conflict":"witness","recused"'
    ':false,"worked_stages":[]},{"person_id":"e","zone_id":"z-1","home_township_id":"t-2","ca'
    'se_working":true,"skills":[],"status":"active","open_workload":0,"workload_cap":3,"confl'
    'ict":null,"recused":false,"worked_stages":["investigation"]},{"person_id":"f","zone_id":'
    '"z-1","home_township_id":"t-2","case_working":true,"skills":[],"status":"active","open_w'
    'orkload":3,"workload_cap":3,"conflict":null,"recused":false,"worked_stages":[]},{"person'
    '_id":"g","zone_id":"z-1","home_township_id":"t-2","case_working":true,"skills":[],"statu'
    's":"active","open_workload":0,"workload_cap":3,"conflict":null,"recused":false,"worked_s'
    'tages":[]},{"person_id":"h","zone_id":"z-1","home_township_id":"t-2","case_working":true'
    ',"skills":[],"status":"active","open_workload":1,"workload_cap":3,"conflict":null,"recus'
    'ed":false,"worked_stages":[]}],"stages":[{"name":"registered","remaining":["a","b","c","'
    'd","e","f","g","h"]},{"name":"not_in_pool","remaining":["a","b","c","d","e","f","g","h"]'
    '},{"name":"subject_township","remaining":["a","b","d","e","f","g","h"]},{"name":"exclude'
    'd_by_request","remaining":["a","b","d","e","f","g","h"]},{"name":"worked_case_before","r'
    'emaining":["a","b","d","f","g","h"]},{"name":"declared_conflict","remaining":["a","b","f'
    '","g","h"]},{"name":"recused","remaining":["a","b","f","g","h"]},{"name":"unavailable","'
    'remaining":["a","b","f","g","h"]},{"name":"over_workload_cap","remaining":["a","b","g","'
    'h"]},{"name":"workload_above_balance","remaining":["a","b","g","h"]}],"exclusions":[{"pe'
    'rson_id":"c","reason":"subject_township","detail":"home township t-1 is the subject\'s (异'
    '地办案)"},{"person_id":"e","reason":"worked_case_before","detail":"already worked this case'
    ' (investigation)"},{"person_id":"d","reason":"declared_conflict","detail":"declared conf'
    'lict with the subject: witness"},{"person_id":"f","reason":"over_workload_cap","detail":'
    '"open workload 3 reaches the cap 3"}],"outcome":{"members":["a","b"],"unfillable_reasons'
    '":[]},"override_reason":null,"overridden_by":null}'
)
FORMAT_1_HASH = "8e1d37167a086a0933146761cc303cf820e1c0d74b45cf926a87b8733a7a47ea"
RULES = DrawRules(version="t", effective_from=date(2026, 1, 1), max_workload_distance=1)


def test_a_format_1_record_still_reads_replays_and_hashes_as_stored() -> None:
    record = decode_record(FORMAT_1_RECORD)
    assert record.algorithm_version == "staffing-draw/lots-sha256-balanced/1"
    assert text_hash(FORMAT_1_RECORD) == FORMAT_1_HASH
    result = replay(record)
    assert result.matches, result.differences
    assert record.outcome.members == ("a", "b")
    assert [stage.name for stage in record.stages][-1] == "workload_above_balance"


def test_a_tampered_format_1_stage_list_is_caught_by_replay() -> None:
    record = decode_record(FORMAT_1_RECORD)
    assert record.recorded_stages is not None
    forged = replace(record, recorded_stages=record.recorded_stages[:-1])
    assert replay(forged).differences == ("the candidates after each filter differ",)


@settings(max_examples=150, deadline=None)
@given(requests(), st.lists(candidates(), max_size=30))
def test_the_compact_record_round_trips_and_its_hash_covers_the_stored_text(
    req: DrawRequest, people: list[CandidateFacts]
) -> None:
    record = run_draw(
        draw_id="d",
        request=req,
        candidates=unique_people(people),
        rules=RULES,
        previous_hash=GENESIS_HASH,
        county_secret="s",
    )
    text = record.canonical_json()
    decoded = decode_record(text)
    assert decoded == record
    assert decoded.stages == record.stages
    assert decoded.canonical_json() == text
    assert record.record_hash() == text_hash(text)
    assert record.algorithm_version == ALGORITHM_VERSION


@settings(max_examples=300, deadline=None)
@given(requests(), st.lists(candidates(), max_size=30))
def test_the_inline_screen_agrees_with_the_filters(
    req: DrawRequest, people: list[CandidateFacts]
) -> None:
    ordered = tuple(unique_people(people))
    for person, index in zip(ordered, first_rejections(req, ordered), strict=True):
        failing = [i for i, (_, check) in enumerate(FILTERS) if check(req, person) is not None]
        assert index == (failing[0] if failing else PASSED_EVERY_FILTER)


def test_each_candidate_is_listed_once() -> None:
    person = CandidateFacts(person_id="a", zone_id="z-1", home_township_id="t-2", case_working=True)
    req = DrawRequest(
        request_id="r",
        case_id="c",
        county_id="c-1",
        zone_id="z-1",
        stage=Stage.INVESTIGATION,
        subject_township_id="t-1",
        subject_key="s",
        team_size=1,
        on_date=date(2026, 3, 1),
    )
    with pytest.raises(ValueError, match="once"):
        run_draw(
            draw_id="d",
            request=req,
            candidates=[person, person],
            rules=RULES,
            previous_hash=GENESIS_HASH,
            county_secret="s",
        )
