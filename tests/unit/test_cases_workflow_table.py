"""Every action × stage × role of the default rule set: allowed, forbidden, or wrong stage."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.cases.domain.casefile import (
    Actor,
    CaseFile,
    Command,
    Forbidden,
    Proposal,
    Refused,
    Sanction,
    WrongStage,
    handle,
)
from services.cases.domain.rulebook import ACTIONS
from services.cases.domain.rules import DEFAULT_RULES

RULES = DEFAULT_RULES
ROLES = (
    "case_officer",
    "deputy_chief",
    "zone_chief",
    "county_leadership",
    "party_committee",
    "hearing_officer",
    "assessor",
    "city_commission",
    "case_subject",
)
ME = "p-actor"
CO, DC, ZC, CL, PC, HO = ROLES[:6]
CC, SUBJECT = ROLES[7:]

# The expectation for a village-level subject, written out by hand from the default rules:
# action → stage → roles allowed. Every other (stage, role) pair must be refused.
ALLOWED: dict[str, dict[str, set[str]]] = {
    "propose_disposal": {"registered": {CO, DC, ZC}},
    "approve_disposal": {"disposal_proposed": {ZC}},
    "reject_proposal": {
        "disposal_proposed": {ZC},
        "verification_proposed": {ZC},
        "filing_proposed": {ZC},
        "decision_proposed": {CL},
    },
    "record_inquiry_outcome": {"inquiry": {CO, DC}},
    "review_stored": {"stored_pending": {CO, ZC}},
    "send_inquiry_letter": {"inquiry": {CO, DC, ZC}},
    "record_inquiry_reply": {"inquiry": {CO, DC}},
    "approve_plan": {"verification": {DC}, "investigation": {ZC}},
    "sign_report": {"verification": {CO}},
    "propose_outcome": {"verification": {CO}},
    "approve_outcome": {"verification_proposed": {ZC}},
    "approve_filing": {"filing_proposed": {ZC}},
    "record_evidence": {"investigation": {CO}, "supplementary": {CO}},
    "record_subject_heard": {"investigation": {CO}},
    "request_extension": {"investigation": {CO, HO}, "hearing": {CO, HO}},
    # One level above the filing's / the decision's last approver (county leadership).
    "approve_extension": {"investigation": {PC}, "hearing": {PC}},
    "submit_investigation_report": {"investigation": {CO}},
    "accept_file": {"hearing_pending": {HO}},
    "defer_file": {"hearing_pending": {HO}},
    "refuse_file": {"hearing_pending": {HO}},
    "send_back": {"hearing": {HO}},
    "submit_hearing_report": {"hearing": {HO}},
    "approve_decision": {"decision_proposed": {CL}},
    "request_supplementary": {"transferred": {CO, ZC}},
    "record_procuratorate_decision": {"transferred": {CO, ZC}},
    "notify_unit": {"investigation": {CO, DC, ZC}},
    # 留置: requested by county leadership (in session), approved one level up.
    "request_retention": {"investigation": {CL}},
    "approve_retention": {"investigation": {CC}},
    "end_retention": {
        stage: {CO, CL}
        for stage in (
            "investigation",
            "hearing_pending",
            "hearing",
            "decision_proposed",
            "decided",
            "transferred",
            "closed",
        )
    },
    "complete_supplementary": {"supplementary": {CO}},
    "file_appeal": {"decided": {SUBJECT, CO, ZC, CL}},
    # 复审 by the deciding commission, 复核 one level up: the city commission.
    "decide_appeal": {"appeal_first_review": {CL}, "appeal_second_review": {CC}},
}
PENDING_KIND = {
    "disposal_proposed": ("disposal", "inquiry"),
    "verification_proposed": ("verification_proposal", "close"),
    "filing_proposed": ("filing", "file_case"),
    "decision_proposed": ("decision", "education"),
}
CHOICES = {
    "propose_disposal": "inquiry",
    "record_inquiry_outcome": "admonishment",
    "propose_outcome": "close",
    "submit_hearing_report": "party_sanction",
    "decide_appeal": "upheld",
}
SHA = "ab" * 32


def _file_in(stage: str) -> CaseFile:
    """A file in `stage` with whatever that stage's actions need, the actor on every team."""
    file = CaseFile(
        case_id="case-1",
        subject_level="village",
        rule_version=RULES.version,
        stage=stage,
        working_team=(ME,),
        hearing_team=(ME,),
        review_team=(ME,),
        extension_requested=10,
        clock={"investigation": "investigation", "hearing": "hearing"}.get(stage, ""),
        filed=stage not in ("registered", "disposal_proposed", "inquiry", "verification"),
        subject_heard=True,
    )
    if stage in PENDING_KIND:
        kind, choice = PENDING_KIND[stage]
        file = replace(file, pending=Proposal(kind, choice, RULES.approvers(kind, "village")))
    return file


def _command(action: str) -> Command:
    return Command(
        action=action,
        choice=CHOICES.get(action, ""),
        days=30,
        description="bank statement",
        sha256=SHA,
        sanctions=(Sanction("party", "warning"),) if action == "submit_hearing_report" else (),
        reason="because",
    )


CELLS = [(action, stage, role) for action in ACTIONS for stage in RULES.stages for role in ROLES]


@pytest.mark.parametrize(("action", "stage", "role"), CELLS)
def test_every_action_stage_and_role(action: str, stage: str, role: str) -> None:
    allowed = role in ALLOWED[action].get(stage, set())
    file = _file_in(stage)
    try:
        handle(file, _command(action), Actor(ME, frozenset({role})), RULES)
        outcome = "allowed"
    except WrongStage:
        outcome = "wrong_stage"
    except Forbidden:
        outcome = "forbidden"
    except Refused:
        # The role may act here; a guard (plan not approved, …) refused this particular file.
        outcome = "allowed"
    if stage not in ALLOWED[action]:
        assert outcome == "wrong_stage"
    else:
        assert outcome == ("allowed" if allowed else "forbidden")


def test_the_table_covers_every_action_the_rules_know() -> None:
    assert set(ALLOWED) == set(ACTIONS) == set(RULES.transitions)
    for action, stages in ALLOWED.items():
        assert set(stages) == set(RULES.transitions[action].from_stages), action


@pytest.mark.parametrize(
    "action",
    sorted(a for a in ACTIONS if RULES.transitions[a].team),
)
def test_team_actions_refuse_someone_off_the_team(action: str) -> None:
    stage, roles = next(iter(ALLOWED[action].items()))
    file = _file_in(stage)
    outsider = Actor("p-outsider", frozenset(roles))
    with pytest.raises(Forbidden):
        handle(file, _command(action), outsider, RULES)


def test_a_recused_person_may_do_nothing() -> None:
    file = replace(_file_in("investigation"), recused=(ME,))
    with pytest.raises(Forbidden):
        handle(file, _command("record_evidence"), Actor(ME, frozenset({CO})), RULES)
