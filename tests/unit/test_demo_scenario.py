"""The demo scenario: deterministic, every zone and channel, every report valid for intake."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.demo.county import load_county_plan
from services.demo.requests import submit_request
from services.demo.scenario import (
    DEFAULT_MIX,
    FILED_FATES,
    LONG_ROADS,
    RARE_FATES,
    CountyPlan,
    Fate,
    generate_scenario,
)
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
    filed = sum(fates[fate] for fate in FILED_FATES)
    # About a quarter filed (the reference profile's ~120 of ~500), most of them sanctioned.
    assert 0.2 < filed / len(reports) < 0.33
    assert fates[Fate.CASE_SANCTIONED] > fates[Fate.CASE_NO_SANCTION]
    # 谈话函询 is the commonest way; transfers and appeals stay rare; one retention a year.
    assert fates[Fate.INQUIRY] == max(fates.values())
    assert 0 < fates[Fate.CASE_TRANSFERRED] < 0.03 * len(reports)
    assert fates[Fate.CASE_RETAINED] == 1
    # Campaign clues arrive while the campaign runs.
    first, last = DEFAULT_MIX.campaign_months
    campaign = [r for r in reports if r.channel == "special_campaign"]
    assert campaign and all(first <= r.received_at.month <= last for r in campaign)
    assert all(r.campaign_id == DEFAULT_MIX.campaign_id for r in campaign)
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


def test_a_small_run_still_walks_every_rare_road_early(county: CountyPlan) -> None:
    reports = generate_scenario(county, seed=1, count=30, start=START, until=UNTIL)
    fates = Counter(r.fate for r in reports)
    assert all(fates[fate] >= 1 for fate in RARE_FATES), fates
    assert fates[Fate.CASE_RETAINED] == 1
    # The long roads go to the earliest reports, which have the year to finish them.
    for fate in LONG_ROADS:
        first = next(i for i, r in enumerate(reports) if r.fate is fate)
        assert first < 2 * len(RARE_FATES), (fate, first)


def test_names_are_real_and_no_village_doubles_its_suffix(county: CountyPlan) -> None:
    for township in county.townships:
        assert county.name(township.township_id) == township.name and township.name
        assert not any(village.endswith("村村") for village in township.villages), township
    for zone in county.zone_ids:
        assert county.name(zone).endswith("协作区"), zone
    assert all(county.name(member.person_id) != member.person_id for member in county.staff)
    assert county.name(county.county_leader) != county.county_leader


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
