"""A clue travels to a decision across the real services and broker, teams drawn by staffing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from tests.e2e.conftest import REPO_ROOT, Stack
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

COUNTY, ZONE, TOWNSHIP = "c-demo", "z-1", "t-01"
XIEZUO = REPO_ROOT / ".venv" / "bin" / "xiezuo"
EVENTUAL = 60.0
Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
async def demo_county(stack: Stack) -> None:
    """The demo registry loaded into staffing, so its team draws can succeed."""
    process = await asyncio.create_subprocess_exec(
        str(XIEZUO),
        "staffing",
        "import",
        str(REPO_ROOT / "deploy" / "demo" / "county.yaml"),
        env=stack.cli_env("staffing"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, (out + err).decode(errors="replace")


@pytest.fixture(scope="module")
async def channels(stack: Stack) -> AsyncIterator[tuple[Any, Any]]:
    async with (
        grpc.aio.insecure_channel(stack.grpc("intake")) as intake,
        grpc.aio.insecure_channel(stack.grpc("cases")) as cases,
    ):
        yield intake_pb2_grpc.IntakeServiceStub(intake), cases_pb2_grpc.CaseServiceStub(cases)


class Desk:
    """Calls CaseService as the people of the demo county."""

    def __init__(self, stack: Stack, cases: Any, case_id: str) -> None:
        self.stack, self.cases, self.case_id = stack, cases, case_id

    def who(self, subject: str, *roles: str) -> Metadata:
        token = self.stack.token(roles=roles, county_id=COUNTY, zone_ids=[ZONE], subject=subject)
        return (("authorization", f"Bearer {token}"),)

    @property
    def chief(self) -> Metadata:
        return self.who("p-004", "zone_chief")

    @property
    def deputy(self) -> Metadata:
        return self.who("p-010", "deputy_chief")

    @property
    def leader(self) -> Metadata:
        return self.who("e2e-leader", "county_leadership")

    @property
    def party_committee(self) -> Metadata:
        return self.who("e2e-secretary", "party_committee")

    @staticmethod
    def meeting(chair: str, body: str) -> cases_pb2.CaseMeeting:
        """A quorate meeting of `body` chaired by `chair` that carries the motion."""
        members = [chair, "e2e-m2", "e2e-m3", "e2e-m4", "e2e-m5"]
        return cases_pb2.CaseMeeting(
            body=body, minutes_ref="纪要〔2026〕e2e", members=members, present=members, votes_for=5
        )

    async def act(self, who: Metadata, action: str, **fields: Any) -> Any:
        request = cases_pb2.ActOnCaseRequest(
            idempotency_key=uuid.uuid4().hex, case_id=self.case_id, action=action, **fields
        )
        response = await self.cases.ActOnCase(request, metadata=who, timeout=10)
        # Every command is safe to retry: the same request again acts no second time.
        again = await self.cases.ActOnCase(request, metadata=who, timeout=10)
        assert again.replayed and again.step.step_id == response.step.step_id
        return response

    async def case(self) -> Any:
        got = await self.cases.GetCase(
            cases_pb2.GetCaseRequest(case_id=self.case_id), metadata=self.leader, timeout=10
        )
        return got

    async def team(self, kind: str) -> list[str]:
        async def drawn() -> list[str] | None:
            summary = (await self.case()).case
            members = list(getattr(summary, f"{kind}_team"))
            return members if members and not summary.team_requested else None

        return await eventually(drawn, f"a {kind} team drawn by staffing", within=EVENTUAL)


async def _submit_report(intake: Any, stack: Stack) -> str:
    token = stack.token(roles=["intake_officer"], county_id=COUNTY, zone_ids=[ZONE])
    response = await intake.SubmitReport(
        intake_pb2.SubmitReportRequest(
            idempotency_key=uuid.uuid4().hex,
            county_id=COUNTY,
            zone_id=ZONE,
            township_id=TOWNSHIP,
            channel=intake_pb2.REPORT_CHANNEL_LETTER,
            subject=intake_pb2.ReportedSubject(
                name=f"Zhao Official {uuid.uuid4().hex[:6]}",
                post="village committee director",
                unit="Feng Erqu village committee",
                township_id=TOWNSHIP,
                village="Feng Erqu",
                cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
            ),
            allegation_categories=["embezzlement"],
            content="Road-repair funds were paid to a company owned by the director's son.",
        ),
        metadata=(("authorization", f"Bearer {token}"),),
        timeout=10,
    )
    clue_id: str = response.clue_id
    assert clue_id
    return clue_id


async def test_a_clue_travels_to_a_decision_with_teams_drawn_by_staffing(
    stack: Stack, demo_county: None, channels: tuple[Any, Any]
) -> None:
    intake, cases = channels
    clue_id = await _submit_report(intake, stack)
    desk = Desk(stack, cases, clue_id)

    async def registered() -> Any | None:
        try:
            return await desk.case()
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise

    await eventually(registered, "the clue registered in cases", within=EVENTUAL)

    # Disposal by preliminary verification, approved by the zone chief.
    await desk.act(desk.deputy, "propose_disposal", choice="preliminary_verification")
    await desk.act(desk.chief, "approve_disposal")
    verifiers = await desk.team("working")
    assert len(verifiers) == 2
    await desk.act(desk.deputy, "approve_plan")
    for person in verifiers:
        await desk.act(desk.who(person, "case_officer"), "sign_report")
    await desk.act(desk.who(verifiers[0], "case_officer"), "propose_outcome", choice="file_case")
    await desk.act(desk.chief, "approve_outcome")

    # Filing: the zone chief, then county leadership; the investigation team is drawn.
    await desk.act(desk.chief, "approve_filing")
    filed = await desk.act(desk.leader, "approve_filing")
    assert filed.step.event == "CaseFiled" and filed.case.filed
    investigators = await desk.team("working")
    investigator = desk.who(investigators[0], "case_officer")
    await desk.act(desk.deputy, "notify_unit", description="Hexi village party branch")
    # The investigation plan is settled at a special meeting, not by one signature.
    await desk.act(desk.chief, "approve_plan", meeting=desk.meeting("p-004", "special_meeting"))
    digest = hashlib.sha256(b"bank statements 2026").hexdigest()
    await desk.act(investigator, "record_evidence", description="Bank statements", sha256=digest)
    await desk.act(investigator, "record_subject_heard")
    await desk.act(investigator, "request_extension", days=30, reason="more witnesses")
    extended = await desk.act(desk.party_committee, "approve_extension")
    assert extended.step.event == "ExtensionGranted"
    await desk.act(investigator, "submit_investigation_report")

    # Hearing by a separate team; one send-back for re-investigation.
    hearers = await desk.team("hearing")
    assert len(hearers) >= 2
    hearer = desk.who(hearers[0], "hearing_officer")
    await desk.act(hearer, "accept_file")
    sent_back = await desk.act(hearer, "send_back", reason="interview the contractor")
    assert sent_back.case.stage == "investigation"
    await desk.act(investigator, "submit_investigation_report")
    await desk.act(hearer, "accept_file")
    await desk.act(
        hearer,
        "submit_hearing_report",
        choice="party_sanction",
        sanctions=[cases_pb2.Sanction(track="party", kind="warning")],
    )
    # A sanction is decided by the standing committee in session.
    decided = await desk.act(
        desk.leader, "approve_decision", meeting=desk.meeting("e2e-leader", "standing_committee")
    )
    assert json.loads(decided.step.detail_json)["meeting"]["body"] == "standing_committee"
    assert decided.step.event == "CaseDecided" and decided.case.stage == "decided"

    record = await desk.case()
    history = [step.event for step in record.history]
    assert history.count("TeamAssigned") == 3
    assert history.count("SentBack") == 1 and "ExtensionGranted" in history
    everyone_investigating = set(verifiers) | set(investigators)
    assert not set(record.case.hearing_team) & everyone_investigating
    deadlines = {(d.kind, d.status) for d in record.deadlines}
    assert ("investigation", "extended") in deadlines and ("hearing", "met") in deadlines
    clue = await cases.GetClue(
        cases_pb2.GetClueRequest(clue_id=clue_id), metadata=desk.chief, timeout=10
    )
    assert clue.clue.status == cases_pb2.CLUE_STATUS_CASE_FILED
