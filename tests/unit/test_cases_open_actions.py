"""The actions a file offers each person: what a client (the console) may show as forms."""

from __future__ import annotations

from dataclasses import replace

from services.cases.domain.casefile import (
    Actor,
    Command,
    handle,
    new_case_file,
    open_actions,
    open_approvals,
)
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.domain.teams import assign_team

RULES = DEFAULT_RULES


def _as(person: str, role: str) -> Actor:
    return Actor(person, frozenset({role}))


def test_a_proposed_disposal_is_approved_or_rejected_by_the_zone_chief_only() -> None:
    officer, chief = _as("a", "case_officer"), _as("z", "zone_chief")
    file = new_case_file("clue-1", "village", RULES)
    assert "propose_disposal" in open_actions(file, officer, RULES)
    file = handle(file, Command(action="propose_disposal", choice="inquiry"), officer, RULES).after
    assert open_actions(file, chief, RULES) == ("approve_disposal", "reject_proposal")
    assert open_actions(file, officer, RULES) == ()


def test_team_actions_are_offered_to_the_team_and_nobody_is_offered_anything_once_recused() -> None:
    officer, chief = _as("a", "case_officer"), _as("z", "zone_chief")
    file = new_case_file("clue-1", "village", RULES)
    file = handle(
        file, Command(action="propose_disposal", choice="preliminary_verification"), officer, RULES
    ).after
    file = handle(file, Command(action="approve_disposal"), chief, RULES).after
    file = assign_team(file, "verification", ("a", "b"))
    assert "sign_report" in open_actions(file, officer, RULES)
    assert "sign_report" not in open_actions(file, _as("c", "case_officer"), RULES)
    assert open_actions(replace(file, recused=("a",)), officer, RULES) == ()


def test_the_approvals_awaiting_a_person_include_plans_not_only_proposals() -> None:
    officer, chief, deputy = (
        _as("a", "case_officer"),
        _as("z", "zone_chief"),
        _as("d", "deputy_chief"),
    )
    file = new_case_file("clue-1", "village", RULES)
    file = handle(
        file, Command(action="propose_disposal", choice="preliminary_verification"), officer, RULES
    ).after
    assert open_approvals(file, chief, RULES) == ("approve_disposal", "reject_proposal")
    file = handle(file, Command(action="approve_disposal"), chief, RULES).after
    file = assign_team(file, "verification", ("a", "b"))
    # A village cadre's verification plan is approved by the deputy chief (default rules).
    assert open_approvals(file, deputy, RULES) == ("approve_plan",)
    assert open_approvals(file, chief, RULES) == ()
    assert open_approvals(file, officer, RULES) == ()
