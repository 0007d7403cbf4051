"""Plays each scenario clue through cases' workflow over ActOnCase, as the county's people."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cases.domain.ruleset import RuleSet
from services.demo.playbook import APPROVE_ACTIONS, Playbook, playbook
from services.demo.scenario import CountyPlan, ScriptedReport
from services.demo.timeline import NotYet, PaperClock

# Stages in which a clue's handling has concluded (the reporter is owed the result).
_CONCLUDED = frozenset({"closed", "decided"})
# (subject, roles, zone_id) → a bearer token for that person scoped to that zone.
TokenMint = Callable[[str, Sequence[str], str], str]
Metadata = tuple[tuple[str, str], ...]


class StageObserver(Protocol):
    """Told how many scenario clues stand in each stage as the work goes on."""

    def staged(self, stages: Mapping[str, int]) -> None:
        """Counts of the scenario's clues by their current stage."""


@dataclass(frozen=True)
class CaseResult:
    """Where one scenario clue ended up, against where its script meant it to end."""

    clue_id: str
    zone_id: str
    fate: str
    planned_stage: str
    road: tuple[str, ...]
    stage: str
    # Why it stopped short of the planned stage ("" when it got there).
    stuck: str = ""
    # Its script goes on after today (the next step's date): still in progress, not stuck.
    waiting: str = ""
    # When it was closed or decided on paper (None while it is open).
    concluded_at: datetime | None = None


class _Stuck(Exception):
    """The clue cannot go further now (e.g. staffing could not fill its team)."""


@dataclass(frozen=True)
class CaseWorkSettings:
    """How hard the case work pushes and how long it waits for staffing."""

    concurrency: int = 8
    team_wait_seconds: float = 90.0
    call_timeout: float = 30.0
    poll_seconds: float = 0.5
    # Steps dated after this moment have not happened yet (None: play every script to its end).
    today: datetime | None = None


class CaseWork:
    """Drives the scenario's clues, a bounded number at a time, to their scripted ends."""

    def __init__(
        self,
        stub: cases_pb2_grpc.CaseServiceStub,
        *,
        county: CountyPlan,
        rules: RuleSet,
        mint: TokenMint,
        settings: CaseWorkSettings = CaseWorkSettings(),
    ) -> None:
        self._stub = stub
        self._county = county
        self._rules = rules
        self._mint = mint
        self._settings = settings

    @property
    def today(self) -> datetime | None:
        """Steps dated after this have not happened yet."""
        return self._settings.today

    def zone_index(self, zone_id: str) -> int:
        """The zone's place among the county's zones (orders their scripted quality)."""
        zones = sorted(self._county.zone_chiefs)
        return zones.index(zone_id) if zone_id in zones else 0

    async def work_all(
        self, clues: Sequence[tuple[str, ScriptedReport]], observer: StageObserver
    ) -> list[CaseResult]:
        """Every clue played to its end or to where it got stuck; order as given."""
        stages = {clue_id: "registered" for clue_id, _ in clues}
        observer.staged(Counter(stages.values()))
        gate = asyncio.Semaphore(max(1, self._settings.concurrency))

        def moved(clue_id: str, stage: str) -> None:
            stages[clue_id] = stage
            observer.staged(Counter(stages.values()))

        async def one(clue_id: str, report: ScriptedReport) -> CaseResult:
            async with gate:
                return await _Desk(self, clue_id, report, moved).work()

        return list(await asyncio.gather(*(one(clue_id, report) for clue_id, report in clues)))

    def metadata(self, subject: str, roles: Sequence[str], zone_id: str) -> Metadata:
        """Call metadata acting as `subject` with `roles` in `zone_id`."""
        return (("authorization", f"Bearer {self._mint(subject, roles, zone_id)}"),)

    def approver_id(self, role: str, zone_id: str) -> str:
        """The person who gives `role`'s approval for a case of the zone."""
        people = {
            "zone_chief": self._county.zone_chiefs.get(zone_id, ""),
            "deputy_chief": self._county.zone_deputies.get(zone_id, ""),
            "county_leadership": self._county.county_leader,
        }
        # Nobody named in the registry (e.g. the party committee): a role-named signatory.
        return people.get(role) or f"demo-{role.replace('_', '-')}"

    def approver(self, role: str, zone_id: str) -> Metadata:
        """Call metadata of the person who gives `role`'s approval for a case of the zone."""
        return self.metadata(self.approver_id(role, zone_id), [role], zone_id)

    def meeting(self, table: str, role: str, zone_id: str, clue_id: str) -> dict[str, Any]:
        """The meeting record an approval from `table` needs ({} when one person decides)."""
        body = self._rules.collective.get(table)
        if not body:
            return {}
        chair = self.approver_id(role, zone_id)
        members = list(self._rules.decision_bodies[body].members) or [
            chair,
            *(f"demo-{body.replace('_', '-')}-{n}" for n in range(2, 6)),
        ]
        members = [chair, *sorted(set(members) - {chair})]
        present = members[: max(len(members) * 4 // 5, len(members) // 2 + 1)]
        record = cases_pb2.CaseMeeting(
            body=body,
            minutes_ref=f"纪要-{clue_id}-{table}",
            members=members,
            present=present,
            votes_for=len(present),
        )
        return {"meeting": record}

    async def act(
        self, metadata: Metadata, case_id: str, action: str, when: datetime, **fields: Any
    ) -> cases_pb2.ActOnCaseResponse:
        """One workflow step dated `when`; a refusal stops this clue, never the whole scenario."""
        request = cases_pb2.ActOnCaseRequest(
            idempotency_key=uuid.uuid4().hex, case_id=case_id, action=action, **fields
        )
        request.effective_at.FromDatetime(when)
        try:
            reply: cases_pb2.ActOnCaseResponse = await self._stub.ActOnCase(
                request, metadata=metadata, timeout=self._settings.call_timeout
            )
        except grpc.aio.AioRpcError as error:
            raise _Stuck(f"{action} refused: {error.code().name} {error.details()}") from error
        return reply

    async def case(self, case_id: str, zone_id: str) -> cases_pb2.CaseSummary:
        """The case as its zone chief sees it."""
        reply = await self._stub.GetCase(
            cases_pb2.GetCaseRequest(case_id=case_id),
            metadata=self.approver("zone_chief", zone_id),
            timeout=self._settings.call_timeout,
        )
        summary: cases_pb2.CaseSummary = reply.case
        return summary

    async def team(self, case_id: str, zone_id: str, kind: str) -> list[str]:
        """The team staffing drew for the case (working or hearing), once it is on the file."""
        until = time.monotonic() + self._settings.team_wait_seconds
        while True:
            summary = await self.case(case_id, zone_id)
            members = list(getattr(summary, f"{kind}_team"))
            if not summary.team_requested:
                if members:
                    return members
                # Cases clears the request without a team when staffing answers unfillable.
                raise _Stuck(f"staffing could not fill the {kind} team")
            if time.monotonic() > until:
                raise _Stuck(
                    f"no {kind} team drawn within {self._settings.team_wait_seconds:.0f} s"
                )
            await asyncio.sleep(self._settings.poll_seconds)

    def plan_approvers(self, stage: str, cadre_level: str) -> tuple[str, ...]:
        """Roles approving the verification or investigation plan, in order."""
        table = "verification_plan" if stage == "verification" else "investigation_plan"
        return self._rules.approvers(table, cadre_level)


class _Desk:
    """One clue worked from registration to its scripted end."""

    def __init__(
        self,
        work: CaseWork,
        clue_id: str,
        report: ScriptedReport,
        moved: Callable[[str, str], None],
    ) -> None:
        self._work = work
        self._id = clue_id
        self._report = report
        self._zone = report.zone_id
        self._moved = moved
        self._book: Playbook = playbook(report.fate, report.key, work.zone_index(report.zone_id))
        self._stage = "registered"
        self._clock = PaperClock(report.key, report.registered_at, today=work.today)

    async def work(self) -> CaseResult:
        """Play the playbook; whatever stops it is recorded, not raised."""
        stuck = waiting = ""
        try:
            await self._play()
        except NotYet as later:
            waiting = str(later)
        except _Stuck as reason:
            stuck = str(reason)
        except grpc.aio.AioRpcError as error:
            stuck = f"cases answered {error.code().name}: {error.details()}"
        return CaseResult(
            clue_id=self._id,
            zone_id=self._zone,
            fate=self._report.fate.value,
            planned_stage=self._book.final_stage,
            road=self._book.road,
            stage=self._stage,
            stuck=stuck,
            waiting=waiting,
            concluded_at=self._clock.at if self._stage in _CONCLUDED else None,
        )

    async def _play(self) -> None:
        current = await self._work.case(self._id, self._zone)
        self._seen(current.stage)
        if current.stage != "registered":
            # Worked by an earlier run of the demo (a retry after a failure): leave it be.
            return
        book = self._book
        deputy = self._work.approver("deputy_chief", self._zone)
        await self._act(deputy, "propose_disposal", choice=book.way)
        if book.way == "inquiry":
            await self._act(deputy, "record_inquiry_outcome", choice=book.inquiry_outcome)
        if book.way != "preliminary_verification":
            return
        verifiers = await self._work.team(self._id, self._zone, "working")
        await self._approve_plan("verification")
        for person in verifiers:
            await self._act(self._member(person, "case_officer"), "sign_report")
        lead = self._member(verifiers[0], "case_officer")
        await self._act(lead, "propose_outcome", choice=book.verification_outcome)
        if not book.filed:
            return
        investigator = await self._investigate()
        hearers = await self._work.team(self._id, self._zone, "hearing")
        hearer = self._member(hearers[0], "hearing_officer")
        await self._act(hearer, "accept_file")
        if book.sent_back:
            await self._act(hearer, "send_back", reason="补充调查: interview the contractor")
            await self._act(investigator, "submit_investigation_report")
            await self._act(hearer, "accept_file")
        sanctions = [cases_pb2.Sanction(track=t, kind=k) for t, k in book.sanctions]
        await self._act(hearer, "submit_hearing_report", choice=book.decision, sanctions=sanctions)

    async def _investigate(self) -> Metadata:
        investigators = await self._work.team(self._id, self._zone, "working")
        # The filing is announced and the subject's unit told (通报相关组织).
        deputy = self._work.approver("deputy_chief", self._zone)
        await self._act(deputy, "notify_unit", description="被调查人所在单位党组织")
        await self._approve_plan("investigation")
        investigator = self._member(investigators[0], "case_officer")
        digest = hashlib.sha256(f"{self._report.key} bank statements".encode()).hexdigest()
        await self._act(investigator, "record_evidence", description="银行流水", sha256=digest)
        await self._act(investigator, "record_subject_heard")
        await self._act(investigator, "submit_investigation_report")
        return investigator

    async def _approve_plan(self, stage: str) -> None:
        table = "verification_plan" if stage == "verification" else "investigation_plan"
        for role in self._work.plan_approvers(stage, self._report.cadre_level):
            meeting = self._work.meeting(table, role, self._zone, self._id)
            await self._act(self._work.approver(role, self._zone), "approve_plan", **meeting)

    def _member(self, person: str, role: str) -> Metadata:
        return self._work.metadata(person, [role], self._zone)

    async def _act(self, metadata: Metadata, action: str, **fields: Any) -> None:
        reply = await self._work.act(metadata, self._id, action, self._clock.next(action), **fields)
        self._seen(reply.case.stage)
        # A proposal climbs its approval chain: each approver in turn, as the case names them.
        while reply.case.pending.kind:
            kind, role = reply.case.pending.kind, reply.case.pending.next_approver
            approve = APPROVE_ACTIONS[kind]
            who = self._work.approver(role, self._zone)
            meeting = self._work.meeting(kind, role, self._zone, self._id)
            reply = await self._work.act(
                who, self._id, approve, self._clock.next(approve), **meeting
            )
            self._seen(reply.case.stage)

    def _seen(self, stage: str) -> None:
        if stage and stage != self._stage:
            self._stage = stage
            self._moved(self._id, stage)
