"""Intake's channel rules, taxonomy, rule files and working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.intake.domain.channels import Attachment, ChannelDetails
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission, check_submission
from services.intake.domain.reveal import RevealRefused, RevealState, check_decision, check_read
from services.intake.domain.taxonomy import TaxonomyInvalid, parse_taxonomies
from services.intake.store.rule_files import load_rule_book
from services.working_calendar import NATIONAL_CALENDAR

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
BOOK = load_rule_book()
TAXONOMY = BOOK.taxonomy_on(NOW.date())


def submission(
    channel: Channel, details: ChannelDetails | None = None, **changes: object
) -> Submission:
    base: dict[str, object] = {
        "idempotency_key": "key-1",
        "county_id": "c1",
        "zone_id": "z1",
        "township_id": "t1",
        "channel": channel,
        "subject": Subject("Wang Wu", "secretary", "committee", "t1", "", CadreLevel.VILLAGE),
        "allegation_categories": ("poverty_alleviation_funds",),
        "content": "Fake subsidy claims in 2025.",
        "reporter": None,
        "campaign_id": "camp-1" if channel is Channel.SPECIAL_CAMPAIGN else None,
        "channel_details": details,
    }
    base.update(changes)
    return Submission(**base)  # type: ignore[arg-type]


def fields(problems: list[tuple[str, str]]) -> list[str]:
    return [field for field, _ in problems]


REQUIRED = {
    Channel.VISIT: ["visit.visit_date", "visit.receiving_officer_id"],
    Channel.PHONE: ["phone.called_at"],
    Channel.VILLAGE_INFORMANT: ["village_informant.informant_id"],
    Channel.DAILY_SUPERVISION: ["daily_supervision.supervision_record_id"],
    Channel.INSPECTION_TOUR: ["inspection_tour.tour_id"],
    Channel.FORWARDED: ["forwarded.forwarding_body", "forwarded.forwarding_reference"],
}
VALID = {
    Channel.VISIT: {"visit_date": "2026-11-25", "receiving_officer_id": "officer-7"},
    Channel.PHONE: {"called_at": (NOW - timedelta(hours=1)).isoformat(), "line": "12388"},
    Channel.VILLAGE_INFORMANT: {"informant_id": "inf-42"},
    Channel.DAILY_SUPERVISION: {"supervision_record_id": "sup-2026-9"},
    Channel.INSPECTION_TOUR: {"tour_id": "tour-2026-2"},
    Channel.FORWARDED: {"forwarding_body": "City commission", "forwarding_reference": "CC-77"},
}


@pytest.mark.parametrize("channel", list(REQUIRED))
def test_each_channel_names_its_missing_fields(channel: Channel) -> None:
    assert fields(check_submission(submission(channel), now=NOW)) == REQUIRED[channel]
    empty = ChannelDetails(channel.value, {})
    assert fields(check_submission(submission(channel, empty), now=NOW)) == REQUIRED[channel]


@pytest.mark.parametrize("channel", list(VALID))
def test_each_channel_passes_with_its_details(channel: Channel) -> None:
    details = ChannelDetails(channel.value, VALID[channel])
    assert check_submission(submission(channel, details), now=NOW, taxonomy=TAXONOMY) == []


@pytest.mark.parametrize("channel", [Channel.LETTER, Channel.ONLINE, Channel.SPECIAL_CAMPAIGN])
def test_channels_without_details_need_none(channel: Channel) -> None:
    assert check_submission(submission(channel), now=NOW, taxonomy=TAXONOMY) == []


def test_details_of_another_channel_are_refused() -> None:
    details = ChannelDetails("phone", VALID[Channel.PHONE])
    assert fields(check_submission(submission(Channel.LETTER, details), now=NOW)) == ["phone"]


def test_a_visit_date_is_judged_on_the_countys_date() -> None:
    # 23:30 UTC on 9 March is 07:30 on 10 March in Beijing: a visit that day is not "future".
    early = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)
    today = ChannelDetails("visit", {"visit_date": "2026-03-10", "receiving_officer_id": "o"})
    tomorrow = ChannelDetails("visit", {"visit_date": "2026-03-11", "receiving_officer_id": "o"})
    assert check_submission(submission(Channel.VISIT, today), now=early) == []
    assert check_submission(submission(Channel.VISIT, tomorrow), now=early) == [
        ("visit.visit_date", "must not be in the future")
    ]
    # A county on another clock passes its own date (the calendar's local_date).
    utc_county = check_submission(
        submission(Channel.VISIT, today), now=early, today=date(2026, 3, 9)
    )
    assert utc_county == [("visit.visit_date", "must not be in the future")]


def test_visit_date_and_call_time_are_checked() -> None:
    bad_visit = ChannelDetails("visit", {"visit_date": "26/11/2026", "receiving_officer_id": "o"})
    assert check_submission(submission(Channel.VISIT, bad_visit), now=NOW) == [
        ("visit.visit_date", "must be a date as YYYY-MM-DD")
    ]
    future_call = ChannelDetails("phone", {"called_at": (NOW + timedelta(days=1)).isoformat()})
    assert fields(check_submission(submission(Channel.PHONE, future_call), now=NOW)) == [
        "phone.called_at"
    ]
    bad_id = ChannelDetails("village_informant", {"informant_id": "has spaces"})
    assert fields(check_submission(submission(Channel.VILLAGE_INFORMANT, bad_id), now=NOW)) == [
        "village_informant.informant_id"
    ]


def test_informant_id_never_shows_in_repr() -> None:
    assert "inf-42" not in repr(ChannelDetails("village_informant", {"informant_id": "inf-42"}))


def test_unknown_categories_point_at_their_index() -> None:
    report = submission(Channel.LETTER, allegation_categories=("bribery", "space_piracy"))
    assert check_submission(report, now=NOW, taxonomy=TAXONOMY) == [
        ("allegation_categories[1]", f"is not a category of taxonomy {TAXONOMY.version}")
    ]


def test_attachment_metadata_is_checked() -> None:
    good = Attachment("a" * 64, 1024, "image/jpeg")
    bad = Attachment("xyz", 0, "jpeg")
    problems = check_submission(submission(Channel.LETTER, attachments=(good, bad)), now=NOW)
    assert fields(problems) == [
        "attachments[1].sha256",
        "attachments[1].size_bytes",
        "attachments[1].media_type",
    ]


def test_the_shipped_rule_files_load_and_cover_the_domain_categories() -> None:
    codes = set(TAXONOMY.categories)
    assert {
        "poverty_alleviation_funds",
        "environment",
        "education",
        "healthcare",
        "housing",
    } <= codes
    assert {"work_style", "bribery", "abuse_of_power"} <= codes
    rules = BOOK.rules_on(NOW.date())
    assert rules.acceptance_feedback_working_days == 15
    assert rules.forward_working_days == 5


def test_malformed_taxonomies_are_refused() -> None:
    category = {"code": "bribery", "label": "b", "domain": "integrity"}
    with pytest.raises(TaxonomyInvalid, match="twice"):
        parse_taxonomies(
            {
                "versions": [
                    {
                        "version": "v",
                        "effective_from": date(2026, 1, 1),
                        "categories": [category, category],
                    }
                ]
            }
        )
    with pytest.raises(TaxonomyInvalid, match="lower_snake_case"):
        parse_taxonomies(
            {
                "versions": [
                    {
                        "version": "v",
                        "effective_from": date(2026, 1, 1),
                        "categories": [{**category, "code": "Bad"}],
                    }
                ]
            }
        )
    with pytest.raises(TaxonomyInvalid, match="date"):
        parse_taxonomies(
            {"versions": [{"version": "v", "effective_from": "soon", "categories": [category]}]}
        )


def test_the_newest_taxonomy_in_force_applies() -> None:
    category = {"code": "bribery", "label": "b", "domain": "integrity"}
    versions = parse_taxonomies(
        {
            "versions": [
                {"version": "v1", "effective_from": date(2026, 1, 1), "categories": [category]},
                {"version": "v2", "effective_from": date(2027, 1, 1), "categories": [category]},
            ]
        }
    )
    from services.intake.domain.taxonomy import taxonomy_in_force

    assert taxonomy_in_force(versions, date(2026, 6, 1)).version == "v1"
    assert taxonomy_in_force(versions, date(2027, 6, 1)).version == "v2"


def test_working_days_skip_weekends_and_holidays() -> None:
    thursday = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert NATIONAL_CALENDAR.working_days_after(thursday, 1).date() == date(2026, 11, 27)
    assert NATIONAL_CALENDAR.working_days_after(thursday, 2).date() == date(2026, 11, 30)
    assert NATIONAL_CALENDAR.working_days_after(thursday, 15).date() == date(2026, 12, 17)


def test_reveal_rules() -> None:
    with pytest.raises(RevealRefused, match="different person"):
        check_decision(state=RevealState.PENDING, requested_by="a", custodian="a")
    check_decision(state=RevealState.PENDING, requested_by="a", custodian="b")
    with pytest.raises(RevealRefused, match="not approved"):
        check_read(state=RevealState.PENDING, requested_by="a", reader="a")
    with pytest.raises(RevealRefused, match="only the officer"):
        check_read(state=RevealState.APPROVED, requested_by="a", reader="b")
    with pytest.raises(RevealRefused, match="already been used"):
        check_read(state=RevealState.USED, requested_by="a", reader="a")
    check_read(state=RevealState.APPROVED, requested_by="a", reader="a")


def test_triage_weighs_real_name_evidence_campaign_and_repeats() -> None:
    from services.intake.domain.report import ReporterIdentity
    from services.intake.domain.triage import signals_of, triage_score

    weights = BOOK.rules_on(NOW.date()).triage
    plain = triage_score(signals_of(submission(Channel.LETTER)), weights)
    named = submission(
        Channel.LETTER,
        reporter=ReporterIdentity("A", "", "1", ""),
        attachments=(Attachment("a" * 64, 1, "image/png"),),
    )
    assert plain == weights.base + weights.specific_subject
    assert triage_score(signals_of(named), weights) == (
        plain + weights.real_name + weights.evidence_attached
    )
    assert triage_score(signals_of(named, repeats=50), weights) == weights.max
