"""The casework pages through the console's own app and middleware, with stand-in services.

The services here are small fakes of their gRPC answers (the browser tests run the real
platform); what is checked is the console's part: what it renders from an answer, which
request a form becomes, a field violation shown beside its input, refusals as 403.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from starlette.testclient import TestClient
from xiezuo.assessment.v1 import assessment_pb2
from xiezuo.cases.v1 import cases_pb2
from xiezuo.intake.v1 import intake_pb2
from xiezuo.staffing.v1 import registry_pb2, staffing_pb2

from services.console.app import build_app
from services.console.settings import ConsoleSettings
from services.runtime.grpc.errors import STATUS_DETAILS_KEY
from services.runtime.settings import PlatformSettings
from tests.console_forms import csrf_token, dev_sign_in

CASE = "clue-c-demo-000001"
CHIEF, OUTSIDER = "p-004", "p-048"


def _subject(metadata: Any) -> str:
    token = dict(metadata)["authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _refusal(code: grpc.StatusCode, details: str, *fields: tuple[str, str]) -> Exception:
    status = status_pb2.Status(code=code.value[0], message=details)
    if fields:
        packed = any_pb2.Any()
        packed.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in fields
                ]
            )
        )
        status.details.append(packed)
    trailing = grpc.aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


def _summary() -> cases_pb2.CaseSummary:
    return cases_pb2.CaseSummary(
        case_id=CASE,
        county_id="c-demo",
        zone_id="z-1",
        township_id="t-01",
        township_ids=["t-01"],
        stage="disposal_proposed",
        pending=cases_pb2.PendingProposal(
            kind="disposal", choice="preliminary_verification", next_approver="zone_chief"
        ),
        working_team=["p-033", "p-037"],
        caller_approvals=["approve_disposal", "reject_proposal"],
    )


class Cases:
    """Cases as the zone chief of z-1 and an outsider from z-2 would find it."""

    def __init__(self) -> None:
        self.acted: list[cases_pb2.ActOnCaseRequest] = []
        self.followed: list[Any] = []
        self.listed: list[cases_pb2.ListCasesRequest] = []

    async def GetCase(self, request: Any, metadata: Any, **_: Any) -> Any:
        if _subject(metadata) != CHIEF:
            raise _refusal(grpc.StatusCode.PERMISSION_DENIED, f"may not see case {CASE}")
        step = cases_pb2.CaseStep(
            step_id=3,
            actor="event:staffing",
            action="team_assigned",
            from_stage="verification",
            to_stage="verification",
            detail_json=json.dumps(
                {"draw_id": "draw-1", "team": "verification", "members": ["p-033", "p-037"]}
            ),
        )
        return cases_pb2.GetCaseResponse(
            case=_summary(),
            history=[step],
            open_actions=["approve_disposal", "reject_proposal"],
        )

    async def ListCases(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.listed.append(request)
        return cases_pb2.ListCasesResponse(cases=[_summary()])

    async def CountCasesByStage(self, request: Any, metadata: Any, **_: Any) -> Any:
        counts = [
            cases_pb2.StageCount(stage="disposal_proposed", filed=False, count=41),
            cases_pb2.StageCount(stage="closed", filed=True, count=7),
            cases_pb2.StageCount(stage="closed", filed=False, count=23),
        ]
        return cases_pb2.CountCasesByStageResponse(counts=counts, total=71)

    async def ListRectifications(self, request: Any, metadata: Any, **_: Any) -> Any:
        item = cases_pb2.RectificationItem(
            item_id="rect-1", zone_id="z-1", township_id="t-01", status="open", finding="村务不公开"
        )
        return cases_pb2.ListRectificationsResponse(items=[item])

    async def ReportRectificationProgress(self, request: Any, metadata: Any, **_: Any) -> Any:
        if not request.note:
            raise _refusal(grpc.StatusCode.INVALID_ARGUMENT, "bad request", ("note", "is required"))
        self.followed.append(request)
        return cases_pb2.ReportRectificationProgressResponse()

    async def VerifyRectification(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.followed.append(request)
        return cases_pb2.VerifyRectificationResponse()

    async def ActOnCase(self, request: Any, metadata: Any, **_: Any) -> Any:
        if request.action == "reject_proposal" and not request.reason:
            raise _refusal(
                grpc.StatusCode.INVALID_ARGUMENT, "bad request", ("reason", "is required")
            )
        self.acted.append(request)
        return cases_pb2.ActOnCaseResponse(
            step=cases_pb2.CaseStep(step_id=3, action=request.action), case=_summary()
        )


class Staffing:
    def __init__(self) -> None:
        self.overridden: list[staffing_pb2.OverrideDrawRequest] = []

    async def ExplainDraw(self, request: Any, metadata: Any, **_: Any) -> Any:
        return staffing_pb2.ExplainDrawResponse(
            draw=staffing_pb2.DrawExplanation(
                draw_id=request.draw_id,
                case_id=CASE,
                county_id="c-demo",
                zone_id="z-1",
                stage="verification",
                member_person_ids=["p-033", "p-037"],
                stages=[staffing_pb2.FilterStage(name="registered", remaining_person_ids=["a"])],
                exclusions=[staffing_pb2.Exclusion(person_id="p-029", reason="subject_township")],
            )
        )

    async def ReplayDraw(self, request: Any, metadata: Any, **_: Any) -> Any:
        return staffing_pb2.ReplayDrawResponse(
            matches=True,
            seed_genuine=True,
            hash_intact=True,
            recomputed_member_person_ids=["p-033", "p-037"],
        )

    async def OverrideDraw(self, request: Any, metadata: Any, **_: Any) -> Any:
        if not request.reason:
            raise _refusal(
                grpc.StatusCode.INVALID_ARGUMENT, "bad request", ("reason", "is required")
            )
        if "p-999" in request.member_person_ids:
            index = list(request.member_person_ids).index("p-999")
            raise _refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
                "bad request",
                (f"member_person_ids[{index}]", "unknown person"),
            )
        self.overridden.append(request)
        return staffing_pb2.OverrideDrawResponse(override_id="draw-2")

    async def ListPeople(self, request: Any, metadata: Any, **_: Any) -> Any:
        return staffing_pb2.ListPeopleResponse(
            people=[
                staffing_pb2.Person(
                    person_id="p-033", name="曹红梅", workload_cap=3, open_assignments=3
                ),
                staffing_pb2.Person(
                    person_id="p-037", name="万春华", workload_cap=3, open_assignments=1
                ),
            ]
        )


class Registry:
    async def ListZones(self, request: Any, metadata: Any, **_: Any) -> Any:
        return registry_pb2.ListZonesResponse(
            zones=[registry_pb2.Zone(zone_id="z-1", name="第一协作区")]
        )

    async def ListTownships(self, request: Any, metadata: Any, **_: Any) -> Any:
        return registry_pb2.ListTownshipsResponse(
            townships=[registry_pb2.Township(township_id="t-01", zone_id="z-1", name="二曲镇")]
        )


class Assessment:
    async def GetRanking(self, request: Any, metadata: Any, **_: Any) -> Any:
        return assessment_pb2.GetRankingResponse(
            entries=[
                assessment_pb2.RankingEntry(
                    subject_id="z-1", total=88.5, rank=2, tier=assessment_pb2.TIER_MIDDLE
                )
            ],
            ranked_units=6,
        )

    async def ExplainScore(self, request: Any, metadata: Any, **_: Any) -> Any:
        return assessment_pb2.ExplainScoreResponse(
            scorecard=assessment_pb2.Scorecard(
                total=88.5,
                components=[
                    assessment_pb2.ScoreComponent(
                        kind=assessment_pb2.COMPONENT_KIND_BONUS, kpi="cases_filed", count=3
                    )
                ],
            )
        )


class Intake:
    def __init__(self) -> None:
        self.submitted: list[intake_pb2.SubmitReportRequest] = []

    async def SubmitReport(self, request: Any, metadata: Any, **_: Any) -> Any:
        if not request.content:
            raise _refusal(
                grpc.StatusCode.INVALID_ARGUMENT, "bad request", ("visit.visit_date", "is required")
            )
        self.submitted.append(request)
        return intake_pb2.SubmitReportResponse(
            report_id="rpt-1", clue_id=CASE, receipt_code="1234567890123456", zone_id="z-1"
        )


class Stubs:
    def __init__(self) -> None:
        self.cases = Cases()
        self.staffing = Staffing()
        self.registry = Registry()
        self.assessment = Assessment()
        self.intake = Intake()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[TestClient, Stubs]]:
    app = build_app(ConsoleSettings(), PlatformSettings(state_dir=tmp_path))
    app.state.stubs = stubs = Stubs()
    # Not entered as a context manager: the lifespan would dial the services and Kafka.
    yield TestClient(app, base_url="http://console.test"), stubs


def _sign_in(client: TestClient, person: str) -> None:
    dev_sign_in(client, person, "/work")


def test_the_inbox_lists_the_disposal_awaiting_the_zone_chief(
    console: tuple[TestClient, Stubs],
) -> None:
    client, _ = console
    _sign_in(client, CHIEF)
    page = client.get("/work")
    assert page.status_code == 200
    inbox = page.text.split('id="inbox"', 1)[1].split("</section>", 1)[0]
    assert CASE in inbox and "初步核实" in inbox


def test_the_case_file_offers_the_actions_cases_names_and_shows_the_team_by_name(
    console: tuple[TestClient, Stubs],
) -> None:
    client, _ = console
    _sign_in(client, CHIEF)
    page = client.get(f"/cases/{CASE}")
    assert page.status_code == 200
    assert 'id="act-approve_disposal"' in page.text and 'id="act-reject_proposal"' in page.text
    assert 'id="act-propose_disposal"' not in page.text
    assert "曹红梅" in page.text and "p-033" in page.text
    assert "/draws/draw-1/replay" in page.text


def test_an_approval_is_one_act_on_case_and_back_to_the_file(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    page = client.get(f"/cases/{CASE}")
    reply = client.post(
        f"/cases/{CASE}/act",
        data={
            "action": "approve_disposal",
            "idempotency_key": "k-1",
            "csrf_token": csrf_token(page.text),
        },
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == f"/cases/{CASE}?step=3#step-done"
    [acted] = stubs.cases.acted
    assert (acted.case_id, acted.action, acted.idempotency_key) == (CASE, "approve_disposal", "k-1")


def test_a_field_violation_is_shown_beside_its_input_and_nothing_acts(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    page = client.get(f"/cases/{CASE}")
    reply = client.post(
        f"/cases/{CASE}/act",
        data={"action": "reject_proposal", "reason": "", "csrf_token": csrf_token(page.text)},
    )
    assert reply.status_code == 400
    assert re.search(r'id="err-reject_proposal-reason"[^>]*>\s*<li>is required</li>', reply.text)
    assert 'aria-invalid="true" aria-describedby="err-reject_proposal-reason"' in reply.text
    assert stubs.cases.acted == []


def test_an_action_without_the_csrf_token_is_refused(console: tuple[TestClient, Stubs]) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    reply = client.post(f"/cases/{CASE}/act", data={"action": "approve_disposal"})
    assert reply.status_code == 403
    assert stubs.cases.acted == []


def test_an_officer_of_another_zone_is_refused_the_case_and_shown_nothing_of_it(
    console: tuple[TestClient, Stubs],
) -> None:
    client, _ = console
    _sign_in(client, OUTSIDER)
    page = client.get(f"/cases/{CASE}")
    assert page.status_code == 403
    assert "曹红梅" not in page.text and "act-approve_disposal" not in page.text


def test_the_draw_replay_says_it_reproduced(console: tuple[TestClient, Stubs]) -> None:
    client, _ = console
    _sign_in(client, CHIEF)
    page = client.get("/draws/draw-1/replay")
    assert page.status_code == 200
    assert 'id="replay-verdict"' in page.text and "复现一致" in page.text


def test_the_zone_board_shows_workload_against_the_cap_and_the_rank(
    console: tuple[TestClient, Stubs],
) -> None:
    client, _ = console
    _sign_in(client, CHIEF)
    page = client.get("/zones/z-1/board?quarter=2026Q1")
    assert page.status_code == 200
    assert "第一协作区" in page.text and "曹红梅" in page.text
    assert "第 2 名（共 6 个协作区）" in page.text
    assert client.get("/zones/z-1/board?quarter=latest").status_code == 400
    in_stage = client.get("/zones/z-1/board?quarter=2026Q1&stage=disposal_proposed")
    files = in_stage.text.split('id="files"', 1)[1].split("</section>", 1)[0]
    assert f'href="/cases/{CASE}"' in files


def test_a_report_goes_to_intake_with_its_channel_and_the_receipt_is_shown_once(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    form = client.get("/reports/new")
    assert form.status_code == 200
    fields = {
        "csrf_token": csrf_token(form.text),
        "idempotency_key": "k-r",
        "channel": "visit",
        "township_id": "t-01",
        "subject_name": "某某",
        "categories": "embezzlement",
        "visit_date": "2026-03-02",
        "receiving_officer_id": "p-022",
    }
    refused = client.post("/reports", data=fields)
    assert refused.status_code == 400 and 'id="err-visit_date"' in refused.text
    done = client.post("/reports", data={**fields, "content": "挪用扶贫资金"})
    assert done.status_code == 200 and "1234567890123456" in done.text
    assert done.headers["cache-control"] == "no-store"
    [submitted] = stubs.intake.submitted
    assert submitted.visit.receiving_officer_id == "p-022" and submitted.county_id == "c-demo"


def test_a_zone_chief_overrides_a_draw_with_a_reason_and_unknown_people_are_named(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    page = client.get("/draws/draw-1")
    assert 'id="override-form"' in page.text
    token = csrf_token(page.text)
    no_reason = client.post(
        "/draws/draw-1/override", data={"members": "p-033, p-037", "csrf_token": token}
    )
    assert no_reason.status_code == 400 and 'id="err-o-reason"' in no_reason.text
    unknown = client.post(
        "/draws/draw-1/override",
        data={"members": "p-033，p-999", "reason": "需要财务审计专长", "csrf_token": token},
    )
    assert unknown.status_code == 400 and 'id="err-o-members"' in unknown.text
    assert "unknown person" in unknown.text
    done = client.post(
        "/draws/draw-1/override",
        data={"members": "p-033, p-037", "reason": "需要财务审计专长", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/draws/draw-2"
    [overridden] = stubs.staffing.overridden
    assert list(overridden.member_person_ids) == ["p-033", "p-037"]


def test_the_override_form_is_not_offered_to_others(console: tuple[TestClient, Stubs]) -> None:
    client, _ = console
    _sign_in(client, "p-010")
    assert 'id="override-form"' not in client.get("/draws/draw-1").text


def test_a_rectification_item_is_followed_up_from_the_zone_board(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    board = client.get("/zones/z-1/board?quarter=2026Q1")
    assert 'id="item-rect-1"' in board.text and 'data-kind="verify"' in board.text
    token = csrf_token(board.text)
    refused = client.post(
        "/zones/z-1/rectification/rect-1",
        data={
            "kind": "progress",
            "percent_done": "60",
            "note": "",
            "quarter": "2026Q1",
            "csrf_token": token,
        },
    )
    assert refused.status_code == 400
    row = refused.text.split('id="item-rect-1"', 1)[1].split("</tr>", 1)[0]
    assert "is required" in row and "<details open" in row
    done = client.post(
        "/zones/z-1/rectification/rect-1",
        data={
            "kind": "verify",
            "done": "yes",
            "note": "经实地核查",
            "quarter": "2026Q1",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/zones/z-1/board?quarter=2026Q1#rectification"
    [verified] = stubs.cases.followed
    assert verified.item_id == "rect-1" and verified.done and verified.note == "经实地核查"


def test_pages_ask_cases_for_the_inbox_and_the_counts_instead_of_every_file(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    _sign_in(client, CHIEF)
    assert client.get("/work").status_code == 200
    board = client.get("/zones/z-1/board?quarter=2026Q1")
    assert board.status_code == 200
    stages = board.text.split('id="stages-h"', 1)[1].split("</section>", 1)[0]
    # The counts are cases' (a filed "closed" apart from clues closed without a case).
    assert ">41<" in stages and ">7<" in stages and ">23<" in stages
    listed = stubs.cases.listed
    assert any(r.awaiting_caller_approval for r in listed)
    # Every list is one bounded call with a filter; none pages through everything visible.
    assert all(0 < r.page_size <= 100 and not r.page_token for r in listed)
    unfiltered = [
        r
        for r in listed
        if not (r.awaiting_caller_approval or r.assignee or r.at_risk_only or r.stage)
    ]
    assert unfiltered == []
