"""The demo scenario: deterministic, every zone and channel, every report valid for intake."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.demo.county import load_county_plan
from services.demo.requests import submit_request
from services.demo.scenario import DEFAULT_MIX, CountyPlan, Fate, generate_scenario
from services.intake.api.convert import submission_from
from services.intake.domain.report import check_submission
from services.intake.store.rule_files import load_rule_book

START = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(scope="module")
def county() -> CountyPlan:
    return load_county_plan()


def test_the_demo_county_has_six_zones_of_eighteen_townships(county: CountyPlan) -> None:
    assert len(county.zone_ids) == 6
    assert len(county.townships) == 18
    assert all(t.informant_ids and t.staff_ids and t.villages for t in county.townships)


def test_the_same_seed_gives_the_same_year_and_another_seed_another(county: CountyPlan) -> None:
    first = generate_scenario(county, seed=11, count=120, start=START, until=UNTIL)
    again = generate_scenario(county, seed=11, count=120, start=START, until=UNTIL)
    other = generate_scenario(county, seed=12, count=120, start=START, until=UNTIL)
    assert first == again
    assert first != other


def test_a_year_covers_every_zone_and_channel_in_a_realistic_mix(county: CountyPlan) -> None:
    reports = generate_scenario(county, seed=2026, count=600, start=START, until=UNTIL)
    assert len(reports) == 600
    assert {r.zone_id for r in reports} == set(county.zone_ids)
    assert {r.township_id for r in reports} == {t.township_id for t in county.townships}
    channels = Counter(r.channel for r in reports)
    assert set(channels) == set(DEFAULT_MIX.channels)
    # Online reports and letters dominate; forwarded reports stay a small share.
    assert channels["online"] > channels["forwarded"]
    assert channels["letter"] > channels["forwarded"]
    fates = Counter(r.fate for r in reports)
    filed = fates[Fate.CASE_SANCTIONED] + fates[Fate.CASE_NO_SANCTION]
    assert 0.4 < filed / len(reports) < 0.6
    assert fates[Fate.CASE_SANCTIONED] > fates[Fate.CASE_NO_SANCTION]
    moments = [r.received_at for r in reports]
    assert moments == sorted(moments)
    assert moments[0] >= START
    assert moments[-1] < UNTIL
    # Received in every quarter of the year so far.
    assert {(m.month - 1) // 3 for m in moments} == {0, 1, 2, 3}
    assert len({r.key for r in reports}) == 600


def test_a_small_run_still_reaches_every_zone(county: CountyPlan) -> None:
    reports = generate_scenario(county, seed=1, count=30, start=START, until=UNTIL)
    assert {r.zone_id for r in reports} == set(county.zone_ids)


def test_no_report_repeats_another_exactly(county: CountyPlan) -> None:
    reports = generate_scenario(county, seed=3, count=600, start=START, until=UNTIL)
    profiles = {(r.subject_name, r.subject_unit, r.township_id, r.categories) for r in reports}
    assert len(profiles) == len(reports)
    # County-division subjects would be forwarded upward and never reach the county's ledger.
    assert all(r.cadre_level != "county_division" for r in reports)


def test_every_generated_request_passes_intakes_own_validation(county: CountyPlan) -> None:
    rule_book = load_rule_book()
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    for report in generate_scenario(county, seed=5, count=600, start=START, until=UNTIL):
        submission = submission_from(submit_request(report))
        taxonomy = rule_book.taxonomy_on(report.received_at.date())
        assert check_submission(submission, now=now, taxonomy=taxonomy) == [], report.key


def test_bad_arguments_are_refused(county: CountyPlan) -> None:
    with pytest.raises(ValueError):
        generate_scenario(county, seed=1, count=-1, start=START, until=UNTIL)
    with pytest.raises(ValueError):
        generate_scenario(county, seed=1, count=1, start=UNTIL, until=START)
