"""The receipt throttle's rules: per-source lockout, county back-off, no per-prefix scope."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.intake.domain.receipt_guard import COUNTY, SOURCE, lockout_until, scopes_of
from services.intake.domain.rules import ReceiptGuard, RulesInvalid, parse_rules

RULES_FILE = Path(__file__).resolve().parents[2] / "services/intake/rules/intake_rules.yaml"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GUARD = ReceiptGuard(
    max_failures_per_caller=5, window_minutes=60, lockout_minutes=60, max_failures_per_county=50
)


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return loaded


def test_a_look_up_counts_against_its_source_and_its_county_only() -> None:
    scopes = scopes_of(county_id="c1", caller="abc")
    assert [scope.kind for scope in scopes] == [SOURCE, COUNTY]
    assert [scope.name for scope in scopes] == ["caller:c1:abc", "county:c1"]


def test_a_source_waits_the_lockout_and_a_county_only_until_its_window_drains() -> None:
    source, county = scopes_of(county_id="c1", caller="abc")
    assert lockout_until(source, [NOW] * 4, NOW, GUARD) is None
    assert lockout_until(source, [NOW] * 5, NOW, GUARD) == NOW + timedelta(minutes=60)
    failures = [NOW - timedelta(minutes=minute) for minute in range(50)]
    assert lockout_until(county, failures[:49], NOW, GUARD) is None
    # The 50th latest failure, 49 minutes ago, leaves the 60-minute window in 11 minutes.
    assert lockout_until(county, failures, NOW, GUARD) == NOW + timedelta(minutes=11)


def test_the_county_budget_is_read_and_an_older_file_without_it_gets_the_default() -> None:
    (rules,) = parse_rules(_document())
    assert rules.receipt_guard.max_failures_per_county == 50
    older = copy.deepcopy(_document())
    del older["versions"][0]["receipt_guard"]["max_failures_per_county"]
    # An older county file's per-prefix limit is ignored: there is no such scope any more.
    older["versions"][0]["receipt_guard"]["max_failures_per_prefix"] = 10
    (rules,) = parse_rules(older)
    assert rules.receipt_guard == GUARD


@pytest.mark.parametrize("value", [0, -1, "50", True])
def test_a_bad_county_budget_is_refused(value: object) -> None:
    document = copy.deepcopy(_document())
    document["versions"][0]["receipt_guard"]["max_failures_per_county"] = value
    with pytest.raises(RulesInvalid, match="max_failures_per_county"):
        parse_rules(document)
