"""The case-file state machine: the whole road, team rules, and random command sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from services.cases.domain.casefile import (
    DECISION_KINDS,
    DISPOSAL_WAYS,
    INQUIRY_OUTCOMES,
    VERIFICATION_PROPOSALS,
    Actor,
    CaseFile,
    Command,
    Decision,
    Meeting,
    NotNow,
    Refused,
    Sanction,
    Transition,
    handle,
    invariant_violations,
    new_case_file,
)
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.domain.teams import assign_team, excluded_from, recuse

RULES = DEFAULT_RULES
_MARCH = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _as(person: str, role: str) -> Actor:
    return Actor(person, frozenset({role}))


def _meeting(chair: str, body: str = "standing_committee", present: int = 4) -> Meeting:
    members = (chair, "m2", "m3", "m4", "m5")
    return Meeting(body, "纪要〔2026〕1号", members, members[:present], votes_for=present)


def _collective_record(chair: str) -> dict[str, object]:
    return {
        "body": "standing_committee",
        "minutes_ref": "纪要〔2026〕1号",
        "members": 5,
        "present": sorted([chair, "m2", "m3", "m4"]),
        "votes_for": 4,
        "votes_against": 0,
    }


def _do(file: CaseFile, actor: Actor, action: str, **fields: object) -> Transition:
    transition = handle(file, Command(action=action, **fields), actor, RULES)  # type: ignore[arg-type]
    assert invariant_violations(transition.after, RULES) == []
    return transition


def test_a_clue_travels_to_a_decision_with_an_extension_and_one_send_back() -> None:
    officer, zone, deputy = (
        _as("a", "case_officer"),
        _as("z", "zone_chief"),
        _as("d", "deputy_chief"),
    )
    file = new_case_file("clue-1", "village", RULES)
    assert file.clock == "disposal"
    file = _do(file, officer, "propose_disposal", choice="preliminary_verification").after
    step = _do(file, zone, "approve_disposal")
    assert (step.event, step.team_needed, step.clock_stopped) == (
        "ClueDisposed",
        "verification",
        "disposal",
    )
    file = assign_team(step.after, "verification", ("a", "b"))
    file = _do(file, deputy, "approve_plan").after
    with pytest.raises(NotNow, match="not signed"):
        _do(file, officer, "propose_outcome", choice="file_case")
    file = _do(file, officer, "sign_report").after
    file = _do(file, _as("b", "case_officer"), "sign_report").after
    file = _do(file, officer, "propose_outcome", choice="file_case").after
    file = _do(file, zone, "approve_outcome").after
    assert file.stage == "filing_proposed"
    step = _do(file, zone, "approve_filing")
    assert step.event == "ApprovalRecorded" and step.after.stage == "filing_proposed"
    step = _do(step.after, _as("l", "county_leadership"), "approve_filing")
    assert (step.event, step.after.stage, step.clock_started) == (
        "CaseFiled",
        "investigation",
        "investigation",
    )
    file = assign_team(step.after, "investigation", ("a", "c"))
    file = _do(file, deputy, "notify_unit", description="Hexi village party branch").after
    file = _do(file, zone, "approve_plan", meeting=_meeting("z", "special_meeting")).after
    file = _do(file, officer, "record_evidence", description="ledger", sha256="0f" * 32).after
    file = _do(file, officer, "record_subject_heard").after
    file = _do(file, officer, "request_extension", days=60, reason="bank records pending").after
    with pytest.raises(Refused):
        _do(file, zone, "approve_extension")
    step = _do(file, _as("p", "party_committee"), "approve_extension")
    assert (step.event, step.extended_days) == ("ExtensionGranted", 60)
    with pytest.raises(NotNow, match="at most 1"):
        _do(step.after, officer, "request_extension", days=10, reason="again")
    step = _do(step.after, officer, "submit_investigation_report")
    assert step.team_needed == "hearing"
    assert set(excluded_from(step.after, "hearing")) == {"a", "b", "c"}
    with pytest.raises(NotNow, match="may not serve"):
        assign_team(step.after, "hearing", ("b", "h1"))
    file = assign_team(step.after, "hearing", ("h1", "h2"))
    hearer = _as("h1", "hearing_officer")
    file = _do(file, hearer, "accept_file").after
    step = _do(file, hearer, "send_back", reason="interview the cashier")
    assert (step.after.stage, step.clock_started, step.clock_stopped) == (
        "investigation",
        "reinvestigation",
        "hearing",
    )
    step = _do(step.after, officer, "submit_investigation_report")
    assert step.team_needed == "" and step.after.hearing_team == ("h1", "h2")
    file = _do(step.after, hearer, "accept_file").after
    file = _do(
        file,
        hearer,
        "submit_hearing_report",
        choice="party_sanction",
        sanctions=(Sanction("party", "serious_warning"), Sanction("government", "demerit")),
    ).after
    step = _do(file, _as("l", "county_leadership"), "approve_decision", meeting=_meeting("l"))
    assert step.event == "CaseDecided" and step.after.stage == "decided"
    assert step.detail["sanctions"] == [
        {"track": "party", "kind": "serious_warning", "effect_months": 18},
        {"track": "government", "kind": "demerit", "effect_months": 12},
    ]
    appeal = _do(step.after, zone, "file_appeal")
    assert appeal.team_needed == "review"
    assert set(excluded_from(appeal.after, "review")) == {"a", "b", "c", "h1", "h2"}


def test_a_transfer_allows_two_supplementary_rounds() -> None:
    file = CaseFile(
        "c", "village", RULES.version, stage="transferred", filed=True, working_team=("a",)
    )

    file = replace(file, decision=Decision("transfer"))
    officer = _as("a", "case_officer")
    for _ in range(2):
        file = _do(file, officer, "request_supplementary").after
        assert file.clock == "supplementary"
        file = _do(file, officer, "complete_supplementary").after
    with pytest.raises(NotNow, match="at most 2"):
        _do(file, officer, "request_supplementary")


def test_recusal_empties_the_team_and_asks_for_another() -> None:
    file = CaseFile(
        "c", "village", RULES.version, stage="verification", working_team=("a",), signatures=("a",)
    )
    after, again = recuse(file, "a")
    assert after.working_team == () and after.signatures == () and after.recused == ("a",)
    assert again == "verification"
    with pytest.raises(NotNow):
        assign_team(after, "verification", ("a", "b"))


PEOPLE = ("a", "b", "c", "d", "e")
ROLES = (
    "case_officer",
    "deputy_chief",
    "zone_chief",
    "county_leadership",
    "party_committee",
    "hearing_officer",
)
CHOICES = {
    # Progressing choices repeated, so random walks get deep into the workflow too.
    "propose_disposal": [*sorted(DISPOSAL_WAYS), *["preliminary_verification"] * 4],
    "record_inquiry_outcome": sorted(INQUIRY_OUTCOMES),
    "submit_hearing_report": [*sorted(DECISION_KINDS), "transfer", "transfer"],
    "propose_outcome": [*sorted(VERIFICATION_PROPOSALS), *["file_case"] * 4],
    "decide_appeal": ["upheld", "changed"],
    "review_stored": ["reopen", "keep"],
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_command_sequences_never_reach_an_invalid_state(data: st.DataObject) -> None:
    file = new_case_file("clue-x", data.draw(st.sampled_from(["village", "county_section"])), RULES)
    deepest = 0
    for _ in range(data.draw(st.integers(10, 150))):
        kind = data.draw(st.sampled_from(["command"] * 12 + ["team"] * 2 + ["recuse"]))
        before = file
        try:
            if kind == "team":
                members = tuple(data.draw(st.sets(st.sampled_from(PEOPLE), max_size=3)))
                if data.draw(st.booleans()):
                    # Mostly a lawful draw, as staffing makes it; sometimes an unlawful one.
                    members = tuple(set(members) - set(excluded_from(file, file.team_requested)))
                file = assign_team(file, file.team_requested or "verification", members)
            elif kind == "recuse":
                file, _ = recuse(file, data.draw(st.sampled_from(PEOPLE)))
            else:
                actions = sorted(
                    a for a, rule in RULES.transitions.items() if file.stage in rule.from_stages
                )
                if not actions:
                    break  # a closed file takes no more commands
                action = data.draw(st.sampled_from(actions))
                roles = data.draw(st.sets(st.sampled_from(ROLES), min_size=1, max_size=4))
                choice = data.draw(st.sampled_from(CHOICES.get(action, [""])))
                sanctions = (Sanction("party", "warning"),) if choice == "party_sanction" else ()
                if choice == "government_sanction":
                    sanctions = (Sanction("government", "demotion"),)
                command = Command(
                    action=action,
                    choice=choice,
                    days=data.draw(st.integers(0, 120)),
                    description="item",
                    sha256=data.draw(st.sampled_from(["1" * 64, "2" * 64, "bad"])),
                    sanctions=sanctions,
                    reason=data.draw(st.sampled_from(["", "why"])),
                )
                team: tuple[str, ...] = file.current_team()
                on_team = bool(team) and data.draw(st.booleans())
                person = data.draw(st.sampled_from(team if on_team else PEOPLE))
                actor = Actor(person, frozenset(roles))
                file = handle(file, command, actor, RULES).after
        except Refused:
            assert file == before
        assert invariant_violations(file, RULES) == [], file
        if file.stage not in ("closed", "stored_pending"):
            deepest = max(deepest, RULES.stages.index(file.stage))
    # Steer the search towards files that got far (hearing, decision, appeals).
    target(float(deepest))
    event(f"deepest stage: {RULES.stages[deepest]}")


def _before_decision(kind: str, sanctions: tuple[Sanction, ...]) -> CaseFile:
    hearer = _as("h1", "hearing_officer")
    file = CaseFile(
        "c", "village", RULES.version, stage="hearing", filed=True, hearing_team=("h1", "h2")
    )
    return _do(file, hearer, "submit_hearing_report", choice=kind, sanctions=sanctions).after


def test_a_transfer_carries_double_expulsion_and_the_decision_keeps_it() -> None:
    # 双开 is decided together with 移送检察机关: both sanctions travel with the transfer.
    double = (Sanction("party", "expulsion"), Sanction("government", "expulsion"))
    leader = _as("l", "county_leadership")
    step = _do(
        _before_decision("transfer", double), leader, "approve_decision", meeting=_meeting("l")
    )
    assert (step.event, step.after.stage) == ("CaseTransferred", "transferred")
    assert step.detail["sanctions"] == [
        {"track": "party", "kind": "expulsion", "effect_months": 0},
        {"track": "government", "kind": "expulsion", "effect_months": 0},
    ]
    assert step.after.decision is not None and len(step.after.decision.sanctions) == 2
    # A plain transfer (a subject who is neither party member nor public employee) stays valid.
    assert _before_decision("transfer", ()).pending is not None
    with pytest.raises(Refused, match="carries no sanctions"):
        _before_decision("education", (Sanction("party", "warning"),))


def test_verification_and_stored_clues_run_on_their_own_clocks() -> None:
    zone, officer = _as("z", "zone_chief"), _as("a", "case_officer")
    file = new_case_file("clue-v", "village", RULES)
    file = _do(file, officer, "propose_disposal", choice="preliminary_verification").after
    step = _do(file, zone, "approve_disposal")
    # 初步核实 has a time limit of its own, from the approved disposal to the approved report.
    assert (step.clock_stopped, step.clock_started, step.after.clock) == (
        "disposal",
        "verification",
        "verification",
    )
    file = assign_team(step.after, "verification", ("a",))
    file = _do(file, _as("d", "deputy_chief"), "approve_plan").after
    file = _do(file, officer, "sign_report").after
    file = _do(file, officer, "propose_outcome", choice="store").after
    assert file.clock == "verification"
    step = _do(file, zone, "approve_outcome")
    assert step.detail["outcome"] == "store"
    assert (step.after.stage, step.clock_stopped, step.clock_started) == (
        "stored_pending",
        "verification",
        "stored_review",
    )
    # 暂存待查 is reviewed periodically: kept (a new review period) or reopened for disposal.
    kept = _do(step.after, officer, "review_stored", choice="keep")
    assert (kept.after.stage, kept.clock_stopped, kept.clock_started) == (
        "stored_pending",
        "stored_review",
        "stored_review",
    )
    reopened = _do(kept.after, officer, "review_stored", choice="reopen")
    assert (reopened.after.stage, reopened.after.clock) == ("registered", "disposal")
    assert RULES.due("verification", _MARCH).month == 6


def test_a_letter_of_inquiry_is_answered_within_15_working_days() -> None:
    deputy = _as("d", "deputy_chief")
    file = CaseFile("c", "village", RULES.version, stage="inquiry")
    step = _do(file, deputy, "send_inquiry_letter")
    assert (step.clock_started, step.after.inquiry_letter) == ("inquiry_reply", "awaiting_reply")
    # Mon 2 March 2026 + 15 working days (three weekends skipped) = Mon 23 March.
    assert RULES.due("inquiry_reply", _MARCH) == _MARCH.replace(day=23)
    with pytest.raises(NotNow, match="not answered"):
        _do(step.after, deputy, "record_inquiry_outcome", choice="criticism")
    with pytest.raises(NotNow, match="already been sent"):
        _do(step.after, deputy, "send_inquiry_letter")
    replied = _do(step.after, deputy, "record_inquiry_reply")
    assert (replied.clock_stopped, replied.after.clock) == ("inquiry_reply", "")
    closed = _do(replied.after, deputy, "record_inquiry_outcome", choice="criticism")
    assert closed.after.stage == "closed"
    # Silence is no explanation: an unanswered letter may still be escalated to verification.
    escalated = _do(step.after, deputy, "record_inquiry_outcome", choice="escalate_to_verification")
    assert (escalated.clock_stopped, escalated.clock_started) == ("inquiry_reply", "verification")


def _decided(**fields: object) -> CaseFile:
    return CaseFile(
        "c",
        "village",
        RULES.version,
        stage="decided",
        filed=True,
        decision=Decision("party_sanction", ((Sanction("party", "serious_warning"), 18),)),
        decided_at=_MARCH.isoformat(),
        **fields,  # type: ignore[arg-type]
    )


def test_the_sanctioned_person_appeals_within_a_month_and_the_city_answers_the_second() -> None:
    subject = _as("subject-key", "case_subject")
    late = Command("file_appeal", at=_MARCH.replace(month=4, day=3))
    with pytest.raises(NotNow, match="window to appeal closed"):
        handle(_decided(), late, subject, RULES)
    step = handle(_decided(), Command("file_appeal", at=_MARCH.replace(day=20)), subject, RULES)
    assert (step.after.stage, step.detail["filed_by"]) == ("appeal_first_review", "subject")
    first = replace(step.after, review_team=("r1", "r2"))
    upheld = handle(
        first,
        Command("decide_appeal", choice="upheld", at=_MARCH.replace(day=25)),
        _as("l", "county_leadership"),
        RULES,
    )
    assert upheld.after.decided_at.startswith("2026-03-25")
    # The second review's window runs from the first review's answer, and one level up decides.
    second = handle(
        upheld.after, Command("file_appeal", at=_MARCH.replace(month=4, day=20)), subject, RULES
    ).after
    assert second.stage == "appeal_second_review"
    with pytest.raises(Refused, match="city_commission"):
        handle(
            second, Command("decide_appeal", choice="upheld"), _as("l", "county_leadership"), RULES
        )
    handle(second, Command("decide_appeal", choice="upheld"), _as("m", "city_commission"), RULES)


def test_a_changed_review_outcome_replaces_the_decision_and_its_sanctions() -> None:
    review = replace(_decided(), stage="appeal_first_review", review_team=("r1",))
    leader = _as("l", "county_leadership")
    with pytest.raises(Refused, match="must be one of"):
        handle(review, Command("decide_appeal", choice="changed"), leader, RULES)
    changed = handle(
        review,
        Command(
            "decide_appeal",
            choice="changed",
            decision="party_sanction",
            sanctions=(Sanction("party", "warning"),),
        ),
        leader,
        RULES,
    )
    assert changed.after.decision == Decision(
        "party_sanction", ((Sanction("party", "warning"), 12),)
    )
    assert changed.detail["previous_decision"] == "party_sanction"
    assert changed.detail["sanctions"] == [
        {"track": "party", "kind": "warning", "effect_months": 12}
    ]
    assert invariant_violations(changed.after, RULES) == []
    adjusted = handle(
        review,
        Command(
            "decide_appeal",
            choice="changed",
            decision="organisational_handling",
            measures=("reassignment",),
        ),
        leader,
        RULES,
    )
    # The replacing measures are published like a decision's (four forms 2 and 3).
    assert adjusted.detail["organisational_measures"] == ["reassignment"]
    cleared = handle(
        review, Command("decide_appeal", choice="changed", decision="cancel"), leader, RULES
    )
    assert cleared.after.decision == Decision("cancel")
    with pytest.raises(Refused, match="stays as it was"):
        handle(review, Command("decide_appeal", choice="upheld", decision="cancel"), leader, RULES)


def test_a_sanction_is_decided_by_the_standing_committee_in_session() -> None:
    proposed = _before_decision("party_sanction", (Sanction("party", "warning"),))
    leader = _as("l", "county_leadership")
    # Never one signature: the zone chief cannot decide, nor the leader without a meeting.
    with pytest.raises(Refused, match="county_leadership"):
        _do(proposed, _as("z", "zone_chief"), "approve_decision", meeting=_meeting("z"))
    with pytest.raises(Refused, match="decided collectively") as alone:
        _do(proposed, leader, "approve_decision")
    assert alone.value.field == "meeting"
    with pytest.raises(NotNow, match="not quorate"):
        _do(proposed, leader, "approve_decision", meeting=_meeting("l", present=2))
    split = replace(_meeting("l"), votes_for=2, votes_against=2)
    with pytest.raises(NotNow, match="did not carry"):
        _do(proposed, leader, "approve_decision", meeting=split)
    for bad, where in (
        (replace(_meeting("l"), minutes_ref=" "), "meeting.minutes_ref"),
        (replace(_meeting("l"), body="special_meeting"), "meeting.body"),
        (replace(_meeting("l"), present=("l", "outsider", "m2", "m3")), "meeting.present"),
        (replace(_meeting("l"), present=("m2", "m3", "m4", "m5")), "meeting.present"),
        (replace(_meeting("l"), votes_for=5), "meeting.votes_for"),
    ):
        with pytest.raises(Refused) as refused:
            _do(proposed, leader, "approve_decision", meeting=bad)
        assert refused.value.field == where, bad
    step = _do(proposed, leader, "approve_decision", meeting=_meeting("l"))
    assert step.detail["meeting"] == {
        "body": "standing_committee",
        "minutes_ref": "纪要〔2026〕1号",
        "members": 5,
        "present": ["l", "m2", "m3", "m4"],
        "votes_for": 4,
        "votes_against": 0,
    }


def test_a_county_that_names_its_committee_has_every_meeting_checked_against_it() -> None:
    members = frozenset({"l", "m2", "m3"})
    body = replace(RULES.decision_bodies["standing_committee"], members=members)
    rules = replace(RULES, decision_bodies={**RULES.decision_bodies, "standing_committee": body})
    proposed = _before_decision("education", ())
    leader = _as("l", "county_leadership")
    with pytest.raises(Refused, match="members of"):
        handle(proposed, Command("approve_decision", meeting=_meeting("l")), leader, rules)
    meeting = Meeting("standing_committee", "纪要 3", ("l", "m2", "m3"), ("l", "m2"), 2)
    assert handle(
        proposed, Command("approve_decision", meeting=meeting), leader, rules
    ).after.stage == ("decided")


def test_the_investigation_report_waits_until_the_subjects_unit_is_told() -> None:
    officer = _as("a", "case_officer")
    file = CaseFile(
        "c",
        "village",
        RULES.version,
        stage="investigation",
        filed=True,
        working_team=("a",),
        plan_approvals=("zone_chief",),
        subject_heard=True,
    )
    with pytest.raises(NotNow, match="notify_unit"):
        _do(file, officer, "submit_investigation_report")
    with pytest.raises(Refused) as nameless:
        _do(file, officer, "notify_unit")
    assert nameless.value.field == "description"
    told = _do(file, officer, "notify_unit", description="Hexi village party branch")
    assert told.after.unit_notified == "Hexi village party branch"
    with pytest.raises(NotNow, match="already"):
        _do(told.after, officer, "notify_unit", description="again")
    assert _do(told.after, officer, "submit_investigation_report").after.stage == "hearing_pending"


def test_organisational_handling_is_decided_beside_sanctions_or_alone() -> None:
    leader, meeting = _as("l", "county_leadership"), _meeting("l")
    hearer = _as("h1", "hearing_officer")
    file = CaseFile(
        "c", "village", RULES.version, stage="hearing", filed=True, hearing_team=("h1", "h2")
    )
    both = _do(
        file,
        hearer,
        "submit_hearing_report",
        choice="party_sanction",
        sanctions=(Sanction("party", "serious_warning"),),
        measures=("removal_from_office",),
    ).after
    step = _do(both, leader, "approve_decision", meeting=meeting)
    assert step.after.decision is not None
    assert step.after.decision.measures == ("removal_from_office",)
    assert step.detail["organisational_measures"] == ["removal_from_office"]
    alone = _do(
        file,
        hearer,
        "submit_hearing_report",
        choice="organisational_handling",
        measures=("reassignment",),
    ).after
    assert _do(alone, leader, "approve_decision", meeting=meeting).after.stage == "decided"
    for kind, measures, field in (
        ("organisational_handling", (), "measures"),
        ("education", ("exile",), "measures[0]"),
        ("cancel", ("reassignment",), "measures"),
    ):
        with pytest.raises(Refused) as refused:
            _do(file, hearer, "submit_hearing_report", choice=kind, measures=measures)
        assert refused.value.field == field


def test_the_procuratorate_prosecutes_declines_or_returns_the_case_at_most_twice() -> None:
    officer = _as("a", "case_officer")
    file = CaseFile(
        "c",
        "village",
        RULES.version,
        stage="transferred",
        filed=True,
        working_team=("a",),
        decision=Decision("transfer"),
    )
    for _ in range(2):
        back = _do(file, officer, "record_procuratorate_decision", choice="return_supplementary")
        assert (back.after.stage, back.detail["procuratorate"]) == (
            "supplementary",
            "return_supplementary",
        )
        file = _do(back.after, officer, "complete_supplementary").after
    with pytest.raises(NotNow, match="at most 2"):
        _do(file, officer, "record_procuratorate_decision", choice="return_supplementary")
    for choice in ("prosecute", "not_prosecute"):
        done = _do(file, officer, "record_procuratorate_decision", choice=choice)
        assert (done.after.stage, done.event) == ("closed", "ProcuratorateDecided")
    with pytest.raises(Refused):
        _do(file, officer, "record_procuratorate_decision", choice="acquit")


def test_new_facts_survive_the_store_and_old_files_still_read() -> None:
    import json

    from services.cases.store import codec

    file = CaseFile(
        "c",
        "village",
        RULES.version,
        stage="decided",
        filed=True,
        unit_notified="branch",
        inquiry_letter="answered",
        decided_at=_MARCH.isoformat(),
        decision=Decision(
            "party_sanction", ((Sanction("party", "warning"), 12),), ("reassignment",)
        ),
    )
    assert codec.decode(codec.encode(file)) == file
    old = json.loads(codec.encode(file))
    for name in ("unit_notified", "inquiry_letter", "decided_at"):
        del old[name]
    del old["decision"]["measures"]
    assert codec.decode(json.dumps(old)).decision == Decision(
        "party_sanction", ((Sanction("party", "warning"), 12),)
    )


def test_retention_is_decided_in_session_approved_one_level_up_and_extended_once() -> None:
    leader, city = _as("l", "county_leadership"), _as("c", "city_commission")
    file = CaseFile("c", "village", RULES.version, stage="investigation", filed=True)
    with pytest.raises(Refused) as alone:
        _do(file, leader, "request_retention", reason="may flee")
    assert alone.value.field == "meeting"
    asked = _do(file, leader, "request_retention", reason="may flee", meeting=_meeting("l"))
    assert asked.after.retention == "requested"
    assert asked.detail["meeting"] == _collective_record("l")
    with pytest.raises(Refused, match="city_commission"):
        _do(asked.after, leader, "approve_retention")
    held = _do(asked.after, city, "approve_retention")
    assert (held.after.retention, held.side_clock_started) == ("in_force", "retention")
    # The investigation's own clock is untouched: retention runs beside it.
    assert held.after.clock == file.clock and RULES.due("retention", _MARCH).month == 6
    again = _do(
        held.after, leader, "request_retention", reason="accomplices", meeting=_meeting("l")
    )
    extended = _do(again.after, city, "approve_retention")
    assert (extended.side_extended_months, extended.after.retention_extensions) == (3, 1)
    with pytest.raises(NotNow, match="at most 1"):
        _do(extended.after, leader, "request_retention", reason="more", meeting=_meeting("l"))
    ended = _do(extended.after, _as("a", "case_officer"), "end_retention")
    assert (ended.after.retention, ended.side_clock_stopped) == ("ended", "retention")
    with pytest.raises(NotNow):
        _do(ended.after, leader, "request_retention", reason="again", meeting=_meeting("l"))
