"""The four forms (四种形态): each published outcome's form, and people counted once per quarter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.assessment.domain.four_forms import (
    FormsError,
    Outcome,
    load_four_forms,
    parse_four_forms,
    people_in_forms,
)
from services.assessment.handlers.ledgers import classify, subject_key
from services.contracts.cases import CaseDecided, CaseTransferred, StageChanged

FORMS = load_four_forms()
AT = datetime(2026, 5, 4, 9, tzinfo=UTC)


def _step(cls: type, action: str, **detail: object) -> StageChanged:
    return cls(
        county_id="c1",
        zone_id="z1",
        case_id="k1",
        township_id="t1",
        action=action,
        from_stage="decision_proposed",
        to_stage="decided",
        actor="p1",
        rule_version="r",
        occurred_at=AT,
        detail=detail,
    )


def _party(*kinds: str) -> list[dict[str, object]]:
    return [{"track": "party", "kind": kind, "effect_months": 0} for kind in kinds]


@pytest.mark.parametrize(
    ("event", "placed"),
    [
        # 1: criticism, talks, letters of inquiry closed with criticism, 诫勉.
        (_step(StageChanged, "record_inquiry_outcome", choice="criticism"), (1, "criticism")),
        (_step(StageChanged, "record_inquiry_outcome", choice="admonishment"), (1, "admonishment")),
        (_step(StageChanged, "approve_outcome", outcome="reminder_talk"), (1, "reminder_talk")),
        (_step(CaseDecided, "approve_decision", decision="education"), (1, "education")),
        # 2: light sanctions and minor organisational adjustment.
        (
            _step(
                CaseDecided,
                "approve_decision",
                decision="party_sanction",
                sanctions=_party("warning"),
            ),
            (2, "party:warning"),
        ),
        (
            _step(
                CaseDecided,
                "approve_decision",
                decision="government_sanction",
                sanctions=[{"track": "government", "kind": "major_demerit"}],
            ),
            (2, "government:major_demerit"),
        ),
        (
            _step(
                CaseDecided,
                "approve_decision",
                decision="organisational_handling",
                organisational_measures=["reassignment"],
            ),
            (2, "measure:reassignment"),
        ),
        # 3: heavy sanctions and major adjustment; the highest part of a decision places it.
        (
            _step(
                CaseDecided,
                "approve_decision",
                decision="party_sanction",
                sanctions=_party("serious_warning", "probation"),
            ),
            (3, "party:probation"),
        ),
        (
            _step(
                CaseDecided,
                "approve_decision",
                decision="education",
                organisational_measures=["removal_from_office"],
            ),
            (3, "measure:removal_from_office"),
        ),
        # 4: transferred to the procuratorate, with 双开 or without.
        (
            _step(
                CaseTransferred,
                "approve_decision",
                decision="transfer",
                sanctions=_party("expulsion") + [{"track": "government", "kind": "expulsion"}],
            ),
            (4, "transfer"),
        ),
        (_step(CaseDecided, "approve_decision", decision="cancel"), (0, "cancel")),
    ],
)
def test_each_outcome_cases_publishes_has_its_form(
    event: StageChanged, placed: tuple[int, str]
) -> None:
    assert classify(event, FORMS) == (*placed, False)


def test_steps_that_place_nobody_and_a_changed_appeal_that_replaces() -> None:
    assert (
        classify(_step(StageChanged, "record_inquiry_outcome", choice="second_inquiry"), FORMS)
        is None
    )
    assert classify(_step(StageChanged, "approve_outcome", outcome="close"), FORMS) is None
    assert classify(_step(StageChanged, "approve_outcome"), FORMS) is None
    assert classify(_step(StageChanged, "decide_appeal", choice="upheld"), FORMS) is None
    changed = _step(
        StageChanged,
        "decide_appeal",
        choice="changed",
        previous_decision="party_sanction",
        decision="party_sanction",
        sanctions=_party("warning"),
    )
    assert classify(changed, FORMS) == (2, "party:warning", True)


def _outcome(
    case: str, form: int, days: int = 0, *, replaces: bool = False, zone: str = "z1"
) -> Outcome:
    at = AT + timedelta(days=days)
    quarter = f"2026Q{(at.month - 1) // 3 + 1}"
    return Outcome(case, f"e-{case}-{days}", at, quarter, zone, f"t-{zone}", form, replaces)


def test_one_person_counts_once_per_quarter_in_their_highest_form() -> None:
    outcomes = [
        _outcome("k1", 1),
        _outcome("k2", 3, days=5, zone="z2"),
        _outcome("k3", 2, days=1),
        _outcome("k4", 0, days=2),
    ]
    # k1 and k2 are one person: counted once, in form 3, where the form-3 case was decided.
    people = people_in_forms(outcomes, "2026Q2", {"k1": "s-a", "k2": "s-a"}, FORMS)
    assert [(p.person, p.form, p.case_id, p.zone_id) for p in people] == [
        ("case:k3", 2, "k3", "z1"),
        ("s-a", 3, "k2", "z2"),
    ]
    per_case = parse_four_forms({"version": "x", "person_counted_once_per": "case"})
    # Counted per case instead, each case's subject is one more person.
    assert len(people_in_forms(outcomes, "2026Q2", {"k1": "s-a", "k2": "s-a"}, per_case)) == 3


def test_a_changed_appeal_replaces_the_form_in_the_quarter_of_the_decision() -> None:
    decided = _outcome("k1", 3)
    changed = _outcome("k1", 2, days=70, replaces=True)
    assert changed.quarter == "2026Q3"
    people = people_in_forms([decided, changed], "2026Q2", {}, FORMS)
    assert [(p.form, p.event_id) for p in people] == [(2, changed.event_id)]
    assert people_in_forms([decided, changed], "2026Q3", {}, FORMS) == []
    cleared = _outcome("k1", 0, days=70, replaces=True)
    assert people_in_forms([decided, cleared], "2026Q2", {}, FORMS) == []


def test_the_subject_key_is_stable_and_name_free() -> None:
    key = subject_key("c1", "张三", "某村委会", "t1")
    assert key == subject_key("c1", " 张三 ", "某村委会", "t1")
    assert "张" not in key and len(key) == 32
    assert key != subject_key("c1", "张三", "某村委会", "t2")


def test_a_malformed_mapping_is_refused() -> None:
    with pytest.raises(FormsError, match=r"form 0\.\.4"):
        parse_four_forms({"version": "x", "decisions": {"transfer": 5}})
    with pytest.raises(FormsError, match="person_counted_once_per"):
        parse_four_forms({"version": "x", "person_counted_once_per": "year"})
