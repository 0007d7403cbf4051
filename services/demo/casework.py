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
from services.demo.playbook import APPROVE_ACTIONS, Appeal, Playbook, playbook
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
    # The steps taken, as "action" or "action:choice" (what the year's summary counts).
    steps: tuple[str, ...] = ()
    # Whether a case was filed (立案) from it.
    filed: bool = False
    # The outcome in force at the end (decision kind, sanctions, measures, inquiry or
    # verification outcome): what the four forms count.
    outcome: Outcome | None = None


@dataclass(frozen=True)
class Outcome:
    """How a concluded clue was dealt with, as the four forms see it."""

    # "inquiry", "verification" or "decision".
    kind: str
    choice: str
    sanctions: tuple[tuple[str, str], ...] = ()
    measures: tuple[str, ...] = ()


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
        return self.session(body, table, role, zone_id, clue_id)

    def session(
        self, body: str, what: str, role: str, zone_id: str, clue_id: str
    ) -> dict[str, Any]:
        """The record of `body` deciding `what` in session, chaired by `role`'s person."""
        chair = self.approver_id(role, zone_id)
        listed = self._rules.decision_bodies[body].members
        members = sorted(listed) if listed else self._members(body, chair, zone_id)
        members = [chair, *sorted(set(members) - {chair})]
        # Most members attend; the chair always does (they record the decision).
        present = members[: max(len(members) * 4 // 5, len(members) // 2 + 1)]
        record = cases_pb2.CaseMeeting(
            body=body,
            minutes_ref=f"{what}纪要-{clue_id}",
            members=members,
            present=present,
            votes_for=len(present),
        )
        return {"meeting": record}

    def _members(self, body: str, chair: str, zone_id: str) -> list[str]:
        """Who sits on the body when the rules list nobody: the county's own people."""
        county = self._county
        if body == "standing_committee":
            # 纪委常委会: the county leadership and the zone chiefs (members of it, DOMAIN.md §1).
            people = [*county.leadership, *county.zone_chiefs.values()]
        else:
            # 专题会议: the zone's chief and deputy with the county leader in charge.
            people = [
                county.zone_chiefs.get(zone_id, ""),
                county.zone_deputies.get(zone_id, ""),
                county.county_leader,
            ]
        members = [chair, *(person for person in people if person)]
        return list(dict.fromkeys(members))

    def extension_approver(self, stage: str, cadre_level: str) -> str:
        """The role that approves extending `stage`'s time limit (one level up)."""
        return self._rules.extension_approver(stage, cadre_level)

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

    def subject(self, report: ScriptedReport) -> Metadata:
        """Call metadata of the person reported, filing their own appeal (case_subject).

        Cases knows them by the name-free subject key it derives from the reported name,
        unit and township (services/cases/handlers/clue_registered.py), so the token says that.
        """
        raw = "\x1f".join(
            (report.county_id, report.subject_name, report.subject_unit, report.township_id)
        )
        key = hashlib.sha256(raw.encode()).hexdigest()[:32]
        return self.metadata(key, ["case_subject"], report.zone_id)

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
        zone_index = work.zone_index(report.zone_id)
        self._book: Playbook = playbook(report.fate, report.key, zone_index, late=report.late)
        self._stage = "registered"
        self._clock = PaperClock(report.key, report.registered_at, today=work.today)
        self._steps: list[str] = []
        self._outcome: Outcome | None = None
        self._filed = False

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
        concluded = self._stage in _CONCLUDED
        return CaseResult(
            clue_id=self._id,
            zone_id=self._zone,
            fate=self._report.fate.value,
            planned_stage=self._book.final_stage,
            road=self._book.road,
            stage=self._stage,
            stuck=stuck,
            waiting=waiting,
            concluded_at=self._clock.at if concluded else None,
            steps=tuple(self._steps),
            filed=self._filed,
            outcome=self._outcome if concluded else None,
        )

    async def _play(self) -> None:
        current = await self._work.case(self._id, self._zone)
        self._seen(current.stage)
        if current.stage != "registered":
            # Worked by an earlier run of the demo (a retry after a failure): leave it be.
            return
        book = self._book
        deputy = self._work.approver("deputy_chief", self._zone)
        late = 30 if book.late_step == "approve_disposal" else 0
        await self._act(
            deputy, "propose_disposal", choice=book.way, late={"approve_disposal": late}
        )
        if book.way == "store_pending":
            await self._keep_stored()
            return
        if book.way == "inquiry":
            await self._inquire()
            if book.inquiry_outcome != "escalate_to_verification":
                self._outcome = Outcome("inquiry", book.inquiry_outcome)
                return
        elif book.way != "preliminary_verification":
            return
        await self._verify()
        if not book.filed:
            if book.verification_outcome == "store":
                await self._keep_stored()
            else:
                self._outcome = Outcome("verification", book.verification_outcome)
            return
        investigator = await self._investigate()
        await self._hear(investigator)
        if book.transferred:
            await self._after_transfer()
        for appeal in book.appeals:
            await self._appeal(appeal)

    async def _inquire(self) -> None:
        """谈话函询: a talk, or a letter answered in writing, then the outcome."""
        book = self._book
        deputy = self._work.approver("deputy_chief", self._zone)
        pace = ""
        if book.inquiry_letter:
            await self._act(deputy, "send_inquiry_letter", description="函询通知书")
            await self._act(deputy, "record_inquiry_reply")
            pace = "approve_plan"  # the outcome follows the reply within days
        await self._act(deputy, "record_inquiry_outcome", choice=book.inquiry_outcome, pace=pace)

    async def _verify(self) -> None:
        """初步核实: the drawn team's plan approved, the report signed by all, its proposal."""
        verifiers = await self._work.team(self._id, self._zone, "working")
        await self._approve_plan("verification")
        for index, person in enumerate(verifiers):
            pace = "co_sign_report" if index else ""
            await self._act(self._member(person, "case_officer"), "sign_report", pace=pace)
        lead = self._member(verifiers[0], "case_officer")
        await self._act(lead, "propose_outcome", choice=self._book.verification_outcome)

    async def _keep_stored(self) -> None:
        """暂存待查: reviewed and kept each period until today (the review clock never lapses)."""
        zone_chief = self._work.approver("zone_chief", self._zone)
        # Until a review falls after today (NotYet); a year's worth when no today is set.
        for _ in range(5):
            await self._act(zone_chief, "review_stored", choice="keep")

    async def _hear(self, investigator: Metadata) -> None:
        book = self._book
        hearers = await self._work.team(self._id, self._zone, "hearing")
        hearer = self._member(hearers[0], "hearing_officer")
        await self._act(hearer, "accept_file")
        if book.sent_back:
            await self._act(hearer, "send_back", reason="需补充调查：询问工程承包人")
            await self._act(investigator, "submit_investigation_report")
            await self._act(hearer, "accept_file")
        sanctions = [cases_pb2.Sanction(track=t, kind=k) for t, k in book.sanctions]
        await self._act(
            hearer,
            "submit_hearing_report",
            choice=book.decision,
            sanctions=sanctions,
            organisational_measures=list(book.measures),
        )
        self._outcome = Outcome("decision", book.decision, book.sanctions, book.measures)

    async def _investigate(self) -> Metadata:
        book = self._book
        investigators = await self._work.team(self._id, self._zone, "working")
        # The filing is announced and the subject's unit told (通报相关组织).
        deputy = self._work.approver("deputy_chief", self._zone)
        await self._act(deputy, "notify_unit", description="被调查人所在单位党组织")
        await self._approve_plan("investigation")
        investigator = self._member(investigators[0], "case_officer")
        if book.retention:
            await self._retain()
        pace = "retention_evidence" if book.retention else ""
        await self._evidence(investigator, "银行流水", pace)
        if book.retention:
            await self._extend(investigator)
        await self._act(investigator, "record_subject_heard")
        if book.retention:
            leader = self._work.approver("county_leadership", self._zone)
            await self._act(leader, "end_retention", reason="调查终结，解除留置")
        late = 80 if book.late_step == "submit_investigation_report" else 0
        await self._act(investigator, "submit_investigation_report", late_days=late)
        return investigator

    async def _evidence(self, investigator: Metadata, what: str, pace: str = "") -> None:
        digest = hashlib.sha256(f"{self._report.key} {what}".encode()).hexdigest()
        await self._act(investigator, "record_evidence", description=what, sha256=digest, pace=pace)

    async def _retain(self) -> None:
        """留置: decided by the standing committee in session, approved one level up."""
        meeting = self._work.session(
            "standing_committee", "retention", "county_leadership", self._zone, self._id
        )
        leader = self._work.approver("county_leadership", self._zone)
        await self._act(leader, "request_retention", reason="涉嫌严重职务违法，可能串供", **meeting)
        city = self._work.approver("city_commission", self._zone)
        await self._act(city, "approve_retention")

    async def _extend(self, investigator: Metadata) -> None:
        """The investigation extended (one level up) and the retention extended once."""
        await self._act(investigator, "request_extension", days=60, reason="案情复杂，需延长")
        await self._approve_extension()
        meeting = self._work.session(
            "standing_committee", "retention", "county_leadership", self._zone, self._id
        )
        leader = self._work.approver("county_leadership", self._zone)
        await self._act(
            leader,
            "request_retention",
            reason="重要证据尚需查证，延长留置",
            pace="extend_retention",
            **meeting,
        )
        city = self._work.approver("city_commission", self._zone)
        await self._act(city, "approve_retention")

    async def _approve_extension(self) -> None:
        role = self._work.extension_approver("investigation", self._report.cadre_level)
        await self._act(self._work.approver(role, self._zone), "approve_extension")

    async def _after_transfer(self) -> None:
        """移送检察机关: the procuratorate returns the case (补充调查) or prosecutes."""
        zone_chief = self._work.approver("zone_chief", self._zone)
        for _ in range(self._book.supplementary_rounds):
            await self._act(
                zone_chief, "record_procuratorate_decision", choice="return_supplementary"
            )
            team = await self._work.team(self._id, self._zone, "working")
            investigator = self._member(team[0], "case_officer")
            await self._evidence(investigator, "补充调查笔录", "supplementary_evidence")
            await self._act(investigator, "complete_supplementary")
        await self._act(zone_chief, "record_procuratorate_decision", choice="prosecute")

    async def _appeal(self, appeal: Appeal) -> None:
        """The sanctioned person asks for a review; the reviewing commission answers."""
        await self._act(self._work.subject(self._report), "file_appeal")
        await self._work.team(self._id, self._zone, "review")
        second = appeal.level == "second_review"
        role = "city_commission" if second else "county_leadership"
        fields: dict[str, Any] = {"choice": "changed" if appeal.changed else "upheld"}
        if appeal.changed:
            fields["decision"] = appeal.decision
            fields["sanctions"] = [cases_pb2.Sanction(track=t, kind=k) for t, k in appeal.sanctions]
        pace = "decide_second_review" if second else ""
        await self._act(self._work.approver(role, self._zone), "decide_appeal", pace=pace, **fields)
        if appeal.changed:
            # A changed outcome replaces the decision and its sanctions (the four forms too).
            self._outcome = Outcome("decision", appeal.decision, appeal.sanctions)

    async def _approve_plan(self, stage: str) -> None:
        table = "verification_plan" if stage == "verification" else "investigation_plan"
        for role in self._work.plan_approvers(stage, self._report.cadre_level):
            meeting = self._work.meeting(table, role, self._zone, self._id)
            await self._act(self._work.approver(role, self._zone), "approve_plan", **meeting)

    def _member(self, person: str, role: str) -> Metadata:
        return self._work.metadata(person, [role], self._zone)

    async def _act(
        self,
        metadata: Metadata,
        action: str,
        *,
        pace: str = "",
        late_days: int = 0,
        late: Mapping[str, int] | None = None,
        **fields: Any,
    ) -> None:
        """One step, then the approval chain it opens; `late` delays named approvals."""
        when = self._clock.next(action, pace=pace, late_days=late_days)
        reply = await self._work.act(metadata, self._id, action, when, **fields)
        self._done(action, fields.get("choice", ""), reply)
        # A proposal climbs its approval chain: each approver in turn, as the case names them.
        while reply.case.pending.kind:
            kind, role = reply.case.pending.kind, reply.case.pending.next_approver
            approve = APPROVE_ACTIONS[kind]
            who = self._work.approver(role, self._zone)
            meeting = self._work.meeting(kind, role, self._zone, self._id)
            delay = (late or {}).get(approve, 0)
            when = self._clock.next(approve, late_days=delay)
            choice = reply.case.pending.choice
            reply = await self._work.act(who, self._id, approve, when, **meeting)
            self._done(approve, choice, reply)

    def _done(self, action: str, choice: str, reply: cases_pb2.ActOnCaseResponse) -> None:
        self._steps.append(f"{action}:{choice}" if choice else action)
        # A subject's own appeal is answered without the file (they may not read it).
        if reply.HasField("case"):
            self._filed = self._filed or reply.case.filed
            self._seen(reply.case.stage)
        elif action == "file_appeal":
            reviewed = any(step.startswith("decide_appeal") for step in self._steps)
            self._seen("appeal_second_review" if reviewed else "appeal_first_review")

    def _seen(self, stage: str) -> None:
        if stage and stage != self._stage:
            self._stage = stage
            self._moved(self._id, stage)
