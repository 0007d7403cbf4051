"""Rule sets as data: the shipped default, validation of a county's file, the CLI, calendars."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from services.cases.cli import app
from services.cases.domain.rulebook import RuleSetInvalid, load_rule_set
from services.cases.domain.rules import DEFAULT_RULES, DEFAULT_RULES_FILE


def _default_data() -> dict[str, object]:
    data = yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_default_carries_the_limits_of_the_domain_guide() -> None:
    start = datetime(2026, 3, 10, 9, tzinfo=UTC)
    assert DEFAULT_RULES.due("disposal", start) == datetime(2026, 4, 10, 9, tzinfo=UTC)
    assert DEFAULT_RULES.due("investigation", start) == datetime(2026, 6, 8, 9, tzinfo=UTC)
    assert DEFAULT_RULES.due("hearing", start) == datetime(2026, 4, 10, 9, tzinfo=UTC)
    assert DEFAULT_RULES.due("appeal_first_review", start).month == 4
    assert DEFAULT_RULES.due("appeal_second_review", start).month == 5
    assert DEFAULT_RULES.due("supplementary", start).month == 4
    assert DEFAULT_RULES.due("rectification", start).month == 5
    assert DEFAULT_RULES.extensions["investigation"].max_count == 1
    assert DEFAULT_RULES.extensions["investigation"].max_days == 90
    assert DEFAULT_RULES.max_supplementary_rounds == 2
    assert DEFAULT_RULES.sanction_months("government", "warning") == 6
    assert DEFAULT_RULES.sanction_months("government", "major_demerit") == 18
    assert DEFAULT_RULES.sanction_months("government", "dismissal") == 24


def test_a_rule_set_carries_no_calendar_of_its_own() -> None:
    data = _default_data()
    data["calendar"] = {"holidays": [date(2026, 1, 1)]}
    with pytest.raises(RuleSetInvalid, match="calendar: holidays and working days live in"):
        load_rule_set(yaml.safe_dump(data))


def test_team_sizes_are_rule_data_checked_against_the_two_person_minimum() -> None:
    assert dict(DEFAULT_RULES.team_sizes) == {
        "verification": 2,
        "investigation": 2,
        "hearing": 2,
        "review": 2,
    }
    data = _default_data()
    data["team_sizes"] = {"verification": 3, "investigation": 4, "hearing": 2, "review": 3}
    assert load_rule_set(yaml.safe_dump(data)).team_size("investigation") == 4
    data["team_sizes"] = {"verification": 1, "investigation": "two", "hearing": 2, "audit": 2}
    with pytest.raises(RuleSetInvalid) as invalid:
        load_rule_set(yaml.safe_dump(data))
    # safe_dump sorts the keys: the problems come in the file's order.
    assert invalid.value.problems == [
        "team_sizes.audit: is not a team stage (verification, investigation, hearing, review)",
        "team_sizes.investigation: must be a whole number of people",
        "team_sizes.verification: must be 2..15 people (Supervision Law art. 41: at least two)",
        "team_sizes: lacks 'review'",
    ]
    # A county file written before team sizes were data keeps two per team.
    del data["team_sizes"]
    assert load_rule_set(yaml.safe_dump(data)).team_size("hearing") == 2


def test_a_county_file_with_working_day_limits_parses() -> None:
    data = _default_data()
    data["version"] = "county-x-2027.1"
    data["time_limits"]["disposal"] = {"working_days": 20, "warn_days": 3}  # type: ignore[index]
    rules = load_rule_set(yaml.safe_dump(data))
    assert rules.version == "county-x-2027.1"
    # Fri 2 Jan 2026 (元旦) + 20 working days on the national calendar: Sun 4 Jan is worked.
    assert rules.due("disposal", datetime(2026, 1, 2, tzinfo=UTC)) == datetime(
        2026, 1, 29, tzinfo=UTC
    )


def test_every_problem_is_reported_at_once() -> None:
    data = _default_data()
    del data["version"]
    data["time_limits"]["hearing"] = {"months": 1, "days": 3}  # type: ignore[index]
    data["approvals"]["filing"]["village"] = ["mayor"]  # type: ignore[index]
    data["transitions"]["send_back"]["to"] = ["nowhere"]  # type: ignore[index]
    del data["transitions"]["accept_file"]  # type: ignore[attr-defined]
    with pytest.raises(RuleSetInvalid) as invalid:
        load_rule_set(yaml.safe_dump(data))
    text = "\n".join(invalid.value.problems)
    for expected in (
        "version:",
        "time_limits.hearing: needs exactly one",
        "approvals.filing.village: 'mayor' is not on approval_ladder",
        "'nowhere' is not a stage",
        "transitions: lacks 'accept_file'",
    ):
        assert expected in text


def test_cli_validates_the_default_and_rejects_a_broken_file(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["rules", "validate", str(DEFAULT_RULES_FILE), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["version"] == DEFAULT_RULES.version
    broken = tmp_path / "county.yaml"
    broken.write_text("version: x\neffective_from: not-a-date\n", encoding="utf-8")
    bad = runner.invoke(app, ["rules", "validate", str(broken), "--json"])
    assert bad.exit_code == 1
    result = json.loads(bad.output)
    assert result["ok"] is False
    assert any(p.startswith("effective_from") for p in result["problems"])


def test_which_decisions_carry_sanctions_is_rule_data() -> None:
    assert DEFAULT_RULES.decision_sanctions["transfer"].allows == {"party", "government"}
    assert "education" not in DEFAULT_RULES.decision_sanctions
    data = _default_data()
    data["decision_sanctions"]["transfer"] = {"requires": ["party"], "allows": []}  # type: ignore[index]
    data["decision_sanctions"]["fine"] = {"allows": ["money"]}  # type: ignore[index]
    with pytest.raises(RuleSetInvalid) as invalid:
        load_rule_set(yaml.safe_dump(data))
    text = "\n".join(invalid.value.problems)
    assert "decision_sanctions.transfer: a required track must also be allowed" in text
    assert "decision_sanctions.fine: is not a decision kind" in text


def test_collective_decisions_name_bodies_the_rules_define() -> None:
    assert DEFAULT_RULES.collective == {
        "decision": "standing_committee",
        "investigation_plan": "special_meeting",
    }
    data = _default_data()
    data["collective"]["filing"] = "plenary"  # type: ignore[index]
    data["decision_bodies"]["special_meeting"]["quorum_percent"] = 120  # type: ignore[index]
    with pytest.raises(RuleSetInvalid) as invalid:
        load_rule_set(yaml.safe_dump(data))
    text = "\n".join(invalid.value.problems)
    assert "collective.filing: 'plenary' is not a decision body" in text
    assert "decision_bodies.special_meeting: quorum_percent and majority_percent" in text
