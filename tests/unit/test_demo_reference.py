"""The demo year's figures: the four forms of each outcome, roads counted, the reference."""

from __future__ import annotations

from services.demo.casework import CaseResult, Outcome
from services.demo.reference import REFERENCE, comparison, form_of, year_figures


def test_each_outcome_is_placed_in_its_form() -> None:
    assert form_of(Outcome("inquiry", "reminder_talk")) == 1
    assert form_of(Outcome("inquiry", "accept_and_close")) == 0
    assert form_of(Outcome("verification", "reminder_talk")) == 1
    assert form_of(Outcome("verification", "close")) == 0
    assert form_of(Outcome("decision", "education")) == 1
    assert form_of(Outcome("decision", "party_sanction", (("party", "warning"),))) == 2
    heavy = Outcome("decision", "party_sanction", (("party", "probation"),))
    assert form_of(heavy) == 3
    assert form_of(Outcome("decision", "organisational_handling", measures=("reassignment",))) == 2
    removed = Outcome("decision", "organisational_handling", measures=("removal_from_office",))
    assert form_of(removed) == 3
    expelled = (("party", "expulsion"), ("government", "expulsion"))
    assert form_of(Outcome("decision", "transfer", expelled)) == 4
    assert form_of(Outcome("decision", "cancel")) == 0


def _case(steps: tuple[str, ...], outcome: Outcome | None, filed: bool = False) -> CaseResult:
    return CaseResult(
        clue_id="c",
        zone_id="z",
        fate="f",
        planned_stage="closed",
        road=(),
        stage="closed",
        steps=steps,
        filed=filed,
        outcome=outcome,
    )


def test_roads_count_clues_by_the_steps_cases_accepted() -> None:
    appealed_twice = _case(
        (
            "notify_unit",
            "file_appeal",
            "decide_appeal:upheld",
            "file_appeal",
            "decide_appeal:changed",
        ),
        Outcome("decision", "education"),
        filed=True,
    )
    retained = _case(
        ("approve_retention", "approve_retention", "approve_decision:transfer"),
        Outcome("decision", "transfer", (("party", "expulsion"),)),
        filed=True,
    )
    not_filed = _case(("approve_outcome:reminder_talk",), Outcome("verification", "reminder_talk"))
    figures = year_figures(10, [appealed_twice, retained, not_filed])
    assert figures.filed == 2 and figures.sanctioned == 1
    assert figures.forms == (2, 0, 0, 1)
    roads = figures.roads
    assert roads["first reviews (复审, county commission)"] == 1
    assert roads["second reviews (复核, city commission)"] == 1
    assert roads["outcomes changed on appeal"] == 1
    assert roads["retentions extended once"] == 1
    assert roads["verifications ended without filing (了结/谈话提醒/移交)"] == 1
    assert roads["transfers to the procuratorate with 双开"] == 1


def test_the_comparison_is_labelled_an_approximate_profile_and_rated_per_100_clues() -> None:
    assert "approximate" in REFERENCE.label and "not a specific county" in REFERENCE.label
    assert sum(REFERENCE.forms_percent) == 100
    figures = year_figures(0, [])
    rows = {measure: (demo, ref) for measure, demo, ref in comparison(figures)}
    assert rows["cases filed (per 100 clues)"] == ("0 (0)", "120 (24)")
    assert rows["four forms: form 1 share"][1] == "70 %"
