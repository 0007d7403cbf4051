"""Result feedback after closure: rules data, the breach contract and assessment's count."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from services.assessment.domain.kpis import Kpi
from services.assessment.handlers.mappers import feedback_deadline_breached
from services.contracts.intake import FeedbackDeadlineBreached, ResultFeedbackGiven
from services.intake.domain.rules import RulesInvalid, parse_rules
from services.intake.store.rule_files import load_rule_book

RULES_FILE = Path(__file__).resolve().parents[2] / "services/intake/rules/intake_rules.yaml"
DUE = datetime(2025, 3, 31, 10, 0, tzinfo=UTC)


def _document() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return loaded


def test_every_rules_version_carries_the_result_limit() -> None:
    book = load_rule_book()
    assert book.rules and all(rules.result_feedback_working_days == 15 for rules in book.rules)
    assert book.rules_on(date(2026, 1, 5)).result_feedback_working_days == 15


@pytest.mark.parametrize("value", [None, 0, -3, "15", True])
def test_a_missing_or_bad_result_limit_is_refused(value: object) -> None:
    document = _document()
    versions = document["versions"]
    assert isinstance(versions, list)
    if value is None:
        del versions[0]["result_feedback_working_days"]
    else:
        versions[0]["result_feedback_working_days"] = value
    with pytest.raises(RulesInvalid, match="result_feedback_working_days"):
        parse_rules(document)


def _breach(**changes: object) -> FeedbackDeadlineBreached:
    fields: dict[str, object] = {
        "county_id": "c1",
        "zone_id": "z1",
        "report_id": "r1",
        "clue_id": "k1",
        "due_at": DUE,
        "detected_at": DUE,
        "rules_version": "v1",
    }
    return FeedbackDeadlineBreached.model_validate({**fields, **changes})


def test_breach_kind_defaults_to_acceptance_and_old_payloads_still_parse() -> None:
    assert _breach().kind == "acceptance"
    old = _breach().model_dump(mode="json")
    del old["kind"]
    assert FeedbackDeadlineBreached.model_validate(old).kind == "acceptance"


def test_assessment_counts_a_result_breach_like_an_acceptance_breach() -> None:
    facts = feedback_deadline_breached(_breach(kind="result"), DUE)
    assert [(f.kpi, f.occurred_at, f.zone_id) for f in facts] == [
        (Kpi.FEEDBACK_DEADLINES_BREACHED, DUE, "z1")
    ]


def test_result_feedback_event_carries_no_identity_or_text() -> None:
    fields = set(ResultFeedbackGiven.model_fields)
    assert fields == {
        "county_id",
        "zone_id",
        "report_id",
        "clue_id",
        "given_by",
        "given_at",
        "due_at",
        "within_limit",
        "rules_version",
    }
