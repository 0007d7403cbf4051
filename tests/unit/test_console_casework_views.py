"""The casework pages' view helpers: inbox, draws named by a history, forms into requests."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from xiezuo.cases.v1 import cases_pb2
from xiezuo.intake.v1 import intake_pb2

from services.console.casework.intake_form import intake_field, report_request
from services.console.casework.views import (
    FormProblem,
    NameBook,
    act_request,
    action_forms,
    awaiting,
    by_stage,
    draw_ids,
    errors_by_field,
    workloads,
)


class Form(dict[str, str]):
    """A submitted form as Starlette reads it (one value per name)."""

    def getlist(self, key: str) -> list[str]:
        return [self[key]] if key in self else []


def test_the_inbox_holds_the_files_on_which_cases_awaits_the_users_approval() -> None:
    cases = [
        cases_pb2.CaseSummary(case_id="c-1", caller_approvals=["approve_disposal"]),
        cases_pb2.CaseSummary(case_id="c-2", caller_approvals=["approve_plan"]),
        cases_pb2.CaseSummary(
            case_id="c-3",
            pending=cases_pb2.PendingProposal(kind="filing", next_approver="county_leadership"),
        ),
    ]
    assert [c.case_id for c in awaiting(cases)] == ["c-1", "c-2"]


def test_stages_are_counted_in_workflow_order_with_unknown_stages_last() -> None:
    counted = by_stage(["closed", "registered", "county_special", "registered", "hearing"])
    assert [(s.stage, s.count) for s in counted] == [
        ("registered", 2),
        ("hearing", 1),
        ("closed", 1),
        ("county_special", 1),
    ]


def test_the_draws_a_history_names_are_found_with_their_team() -> None:
    history = [
        cases_pb2.CaseStep(action="propose_disposal", detail_json="{}"),
        cases_pb2.CaseStep(
            action="team_assigned",
            detail_json=json.dumps(
                {"draw_id": "d-1", "team": "verification", "members": ["p-1", "p-2"]}
            ),
        ),
        cases_pb2.CaseStep(action="odd", detail_json="[1, 2]"),
    ]
    [draw] = draw_ids(history)
    assert (draw.draw_id, draw.team, draw.members) == ("d-1", "verification", ("p-1", "p-2"))


def test_an_action_form_becomes_the_request_it_stands_for() -> None:
    form = Form(
        choice="party_sanction",
        sanctions="party:warning\ngovernment:demerit",
        organisational_measures="reassignment",
        reason=" heard ",
        meeting_body="standing_committee",
        meeting_minutes_ref="纪要7",
        meeting_members="p-1, p-2, p-3",
        meeting_votes_for="3",
    )
    request = act_request("c-1", "submit_hearing_report", form, "key-1")
    assert (request.case_id, request.action, request.choice, request.reason) == (
        "c-1",
        "submit_hearing_report",
        "party_sanction",
        "heard",
    )
    assert [(s.track, s.kind) for s in request.sanctions] == [
        ("party", "warning"),
        ("government", "demerit"),
    ]
    assert list(request.organisational_measures) == ["reassignment"]
    assert list(request.meeting.present) == ["p-1", "p-2", "p-3"]
    assert request.meeting.votes_for == 3


@pytest.mark.parametrize(
    ("form", "field"),
    [(Form(days="ten"), "days"), (Form(sanctions="warning"), "sanctions")],
)
def test_a_form_that_cannot_be_a_request_names_its_input(form: Form, field: str) -> None:
    with pytest.raises(FormProblem) as problem:
        act_request("c-1", "request_extension", form, "k")
    assert problem.value.field == field


def test_field_violations_are_shown_beside_their_input() -> None:
    grouped = errors_by_field(
        [("sanctions[1]", "unknown kind"), ("meeting.present", "no quorum"), ("", "refused")]
    )
    assert grouped == {
        "sanctions": ["unknown kind"],
        "meeting": ["no quorum"],
        "action": ["refused"],
    }


def test_every_offered_action_gets_a_form_and_an_unlisted_one_a_choice_and_reason() -> None:
    forms = action_forms(["approve_disposal", "reject_proposal", "county_own_step"])
    assert [f.action for f in forms] == ["approve_disposal", "reject_proposal", "county_own_step"]
    assert forms[0].fields == ()
    assert [f.name for f in forms[1].fields] == ["reason"]
    assert [f.name for f in forms[2].fields] == ["choice", "reason"]


@dataclass
class _Person:
    person_id: str
    name: str
    workload_cap: int
    open_assignments: int


def test_workloads_put_the_fullest_first_and_leave_out_who_carries_none() -> None:
    rows = workloads(
        [
            _Person("p-1", "甲", 2, 1),
            _Person("p-2", "乙", 2, 2),
            _Person("p-3", "丙", 0, 0),
        ]
    )
    assert [(w.person_id, w.percent, w.at_cap) for w in rows] == [
        ("p-2", 100, True),
        ("p-1", 50, False),
    ]


def test_names_stand_beside_ids_and_an_unknown_id_stands_alone() -> None:
    book = NameBook()
    book.add([("z-1", "第一协作区"), ("p-9", "")])
    assert book.label("z-1") == "第一协作区 (z-1)"
    assert book.label("p-9") == "p-9"


def test_an_intake_form_carries_its_channels_details_and_a_real_name_reporter() -> None:
    form = Form(
        channel="visit",
        township_id="t-01",
        subject_name="某某",
        cadre_level="village",
        categories="embezzlement, bribery",
        content="……",
        visit_date="2026-03-02",
        receiving_officer_id="p-020",
        real_name="on",
        full_name="张三",
        phone="13800000000",
    )
    request = report_request(form, county_id="c-demo", idempotency_key="k")
    assert request.WhichOneof("channel_details") == "visit"
    assert request.visit.receiving_officer_id == "p-020"
    assert request.subject.cadre_level == intake_pb2.CADRE_LEVEL_VILLAGE
    assert list(request.allegation_categories) == ["embezzlement", "bribery"]
    assert request.reporter.full_name == "张三"
    anonymous = report_request(
        Form(channel="letter", content="x"), county_id="c-demo", idempotency_key="k"
    )
    assert not anonymous.HasField("reporter") and not anonymous.WhichOneof("channel_details")


@pytest.mark.parametrize(
    ("violation", "field"),
    [
        ("subject.name", "subject_name"),
        ("subject.township_id", "township_id"),
        ("reporter.phone", "phone"),
        ("visit.visit_date", "visit_date"),
        ("allegation_categories", "categories"),
    ],
)
def test_intake_violations_are_shown_beside_their_input(violation: str, field: str) -> None:
    assert intake_field(violation) == field
