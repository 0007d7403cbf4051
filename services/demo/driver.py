"""Plays a scenario against the running services over gRPC and waits for them to catch up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, TypeVar

import grpc
from xiezuo.assessment.v1 import assessment_pb2_grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.intake.v1 import intake_pb2_grpc

from services.cases.domain.rules import DEFAULT_RULES
from services.demo.casework import CaseResult, CaseWork, CaseWorkSettings, TokenMint
from services.demo.office import CountyOffice, OfficeYear
from services.demo.reporters import Answerable, Answered, ReporterDesk
from services.demo.requests import submit_request
from services.demo.scenario import DEFAULT_MIX, CountyPlan, ScenarioMix, ScriptedReport
from services.demo.standings import (
    CASES_FILED,
    CLUES_RECEIVED,
    RankedZone,
    Standings,
    ranked_quarter,
)

T = TypeVar("T")

# Stages a clue can stand in without ever having been filed as a case (立案).
_UNFILED_STAGES = frozenset(
    {
        "registered",
        "disposal_proposed",
        "inquiry",
        "verification",
        "verification_proposed",
        "filing_proposed",
        "stored_pending",
        "closed",
    }
)


# Seconds between refreshes of the deadlines-at-risk line while the case work runs.
_RISK_REFRESH_SECONDS = 3.0


def _answerable(submitted: _Submitted, concluded_at: datetime | None) -> Answerable:
    return Answerable(
        key=submitted.report.key,
        report_id=submitted.report_id,
        zone_id=submitted.zone_id,
        real_name=submitted.report.real_name,
        registered_at=submitted.report.registered_at,
        concluded_at=concluded_at,
    )


class DemoFailed(Exception):
    """The scenario could not finish; the message says where and why."""


class Observer(Protocol):
    """What the driver reports as it goes (the live progress display implements it)."""

    def phase(self, text: str) -> None:
        """A new step of the scenario began."""

    def submitted(self, zone_id: str) -> None:
        """Intake registered one more report of this zone."""

    def registered(self, count: int) -> None:
        """Cases has this many of the scenario's clues on its ledger."""

    def projected(self, count: int) -> None:
        """Assessment has counted this many clues received."""

    def staged(self, stages: Mapping[str, int]) -> None:
        """The scenario's clues by the workflow stage they stand in now."""

    def at_risk(self, zones: Mapping[str, int]) -> None:
        """Files per zone with a running deadline in its warning period or past due."""


@dataclass(frozen=True)
class Endpoints:
    """gRPC addresses of the services the scenario talks to."""

    intake: str
    cases: str
    assessment: str
    # Training and attendance are staffing's ("" skips them).
    staffing: str = ""


@dataclass(frozen=True)
class DemoOutcome:
    """What the scenario produced."""

    submitted: int
    clues: int
    # The quarter ranked: the last one that has ended (the current one when none has).
    quarter: str
    ranking: tuple[RankedZone, ...]
    # The year's report as assessment exports it: HTML with charts and trends, and its CSV.
    year: int
    report_html: str
    report_csv: str
    # Where each clue ended up in cases' workflow, against its script.
    cases: tuple[CaseResult, ...] = field(default_factory=tuple)
    # Every quarter of the year's zone scores, for the trend beside the ranking.
    by_quarter: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Files per zone whose deadline is in its warning period or past due, at the end.
    at_risk: Mapping[str, int] = field(default_factory=dict)
    # Reports accepted and real-name reporters told the result.
    answered: Answered = field(default_factory=lambda: Answered(0, 0))
    # The office's year: plan, campaign, training, attendance, rectifications, marks.
    office: OfficeYear = field(default_factory=OfficeYear)
    # Every KPI assessment counted over the year, summed over the zones.
    kpis: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Submitted:
    clue_id: str
    zone_id: str
    quarter: str
    report: ScriptedReport
    report_id: str = ""
    accepted: bool = False


class DemoDriver:
    """Submits the scenario's reports, then waits for cases and assessment to have them."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        token: str,
        county: CountyPlan,
        mint: TokenMint,
        mix: ScenarioMix = DEFAULT_MIX,
        concurrency: int = 8,
        catch_up_seconds: float = 300.0,
        call_timeout: float = 30.0,
    ) -> None:
        self._endpoints = endpoints
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._county = county
        self._county_id = county.county_id
        self._mint = mint
        self._mix = mix
        self._concurrency = concurrency
        self._catch_up_seconds = catch_up_seconds
        self._call_timeout = call_timeout

    async def run(self, reports: Iterable[ScriptedReport], *, observer: Observer) -> DemoOutcome:
        """The whole scenario: submit, let cases and assessment catch up, rank, export."""
        scripted = list(reports)
        today = datetime.now(UTC)
        office = CountyOffice(
            self._county, mint=self._mint, today=today, concurrency=self._concurrency
        )
        observer.phase("defining the year's work plan (Q1–Q4) and its special campaign")
        async with grpc.aio.insecure_channel(self._endpoints.assessment) as channel:
            revision, campaign = await self._office_call(office.plan_the_year(channel, self._mix))
        observer.phase("submitting reports to intake, each accepted (受理) on its paper date")
        submitted = await self._submit_all(scripted, observer)
        clue_ids = {s.clue_id for s in submitted}
        observer.phase("waiting for cases to register the clues")
        await self._await_registered(clue_ids, observer)
        observer.phase(
            "entering the year's case work, each step on its date "
            "(disposal, verification, filing, hearing)"
        )
        zones = sorted({s.zone_id for s in submitted})
        cases, at_risk = await self._work_cases(submitted, zones, observer)
        observer.phase("telling real-name reporters the result of their concluded clues")
        answered = await self._answer_reporters(submitted, cases)
        observer.phase(
            "recording each quarter's training and attendance, the inspection tour's "
            "rectifications and the assessors' qualitative marks"
        )
        office_year = await self._office_year(office, revision, campaign)
        quarters = sorted({s.quarter for s in submitted})
        observer.phase("waiting for assessment to project the events")
        # The ranking must see every filing: a transferred case ends closed, yet was filed.
        filed = sum(1 for case in cases if case.filed or case.stage not in _UNFILED_STAGES)
        await self._await_projected(len(clue_ids), filed, zones, quarters, observer)
        quarter = ranked_quarter(quarters, datetime.now(UTC))
        observer.phase(f"ranking the zones for {quarter} and every quarter of the year")
        by_quarter: dict[str, dict[str, float]] = {}
        ranking: tuple[RankedZone, ...] = ()
        year = int(quarter[:4]) if quarter else datetime.now(UTC).year
        async with grpc.aio.insecure_channel(self._endpoints.assessment) as channel:
            standings = self._standings(channel)
            for each in quarters:
                entries = await standings.ranking(each)
                by_quarter[each] = {entry.zone_id: entry.total for entry in entries}
                if each == quarter:
                    ranking = entries
            html, csv = await standings.export(year)
            kpis = await standings.counted(zones, quarters)
        return DemoOutcome(
            submitted=len(scripted),
            clues=len(clue_ids),
            quarter=quarter,
            ranking=ranking,
            year=year,
            report_html=html,
            report_csv=csv,
            cases=tuple(cases),
            by_quarter=by_quarter,
            at_risk=at_risk,
            answered=answered,
            office=office_year,
            kpis=kpis,
        )

    async def _office_year(self, office: CountyOffice, revision: int, campaign: str) -> OfficeYear:
        trained = attended = 0
        if self._endpoints.staffing:
            async with grpc.aio.insecure_channel(self._endpoints.staffing) as channel:
                trained, attended = await self._office_call(office.keep_staff_records(channel))
        async with grpc.aio.insecure_channel(self._endpoints.cases) as channel:
            opened, closed = await self._office_call(office.inspection_tour(channel, campaign))
        async with grpc.aio.insecure_channel(self._endpoints.assessment) as channel:
            marks = await self._office_call(office.mark_quarters(channel))
        return OfficeYear(
            plan_revision=revision,
            campaign=campaign,
            training_records=trained,
            attendance_days=attended,
            rectifications_opened=opened,
            rectifications_closed=closed,
            qualitative_marks=marks,
        )

    async def _office_call(self, call: Awaitable[T]) -> T:
        """An office call's result; a refusal fails the demo with what was refused."""
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise DemoFailed(
                f"the county office's record was refused: {error.code().name} {error.details()}"
            ) from error

    async def _work_cases(
        self, submitted: list[_Submitted], zones: list[str], observer: Observer
    ) -> tuple[list[CaseResult], dict[str, int]]:
        async with grpc.aio.insecure_channel(self._endpoints.cases) as channel:
            stub = cases_pb2_grpc.CaseServiceStub(channel)
            work = CaseWork(
                stub,
                county=self._county,
                rules=DEFAULT_RULES,
                mint=self._mint,
                settings=CaseWorkSettings(
                    concurrency=self._concurrency,
                    call_timeout=self._call_timeout,
                    today=datetime.now(UTC),
                ),
            )
            done = asyncio.Event()
            watch = asyncio.create_task(self._watch_risk(stub, zones, observer, done))
            try:
                results = await work.work_all([(s.clue_id, s.report) for s in submitted], observer)
            finally:
                done.set()
                await watch
            at_risk = await self._at_risk(stub, zones)
            observer.at_risk(at_risk)
            return results, at_risk

    def _reporter_desk(self, stub: intake_pb2_grpc.IntakeServiceStub) -> ReporterDesk:
        return ReporterDesk(
            stub, mint=self._mint, today=datetime.now(UTC), call_timeout=self._call_timeout
        )

    async def _answer_reporters(
        self, submitted: list[_Submitted], cases: list[CaseResult]
    ) -> Answered:
        concluded = {case.clue_id: case.concluded_at for case in cases}
        reports = [_answerable(s, concluded.get(s.clue_id)) for s in submitted]
        async with grpc.aio.insecure_channel(self._endpoints.intake) as channel:
            desk = self._reporter_desk(intake_pb2_grpc.IntakeServiceStub(channel))
            try:
                told = await desk.tell_results(reports, concurrency=self._concurrency)
            except grpc.aio.AioRpcError as error:
                raise DemoFailed(
                    f"intake refused to record a result told: {error.code().name} {error.details()}"
                ) from error
        return Answered(sum(1 for s in submitted if s.accepted), told)

    async def _watch_risk(
        self,
        stub: cases_pb2_grpc.CaseServiceStub,
        zones: list[str],
        observer: Observer,
        done: asyncio.Event,
    ) -> None:
        """Deadlines at risk per zone, refreshed while the case work goes on."""
        while not done.is_set():
            # A display refresh: when one fails, the next one tries again.
            with contextlib.suppress(grpc.aio.AioRpcError):
                observer.at_risk(await self._at_risk(stub, zones))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), _RISK_REFRESH_SECONDS)

    async def _at_risk(
        self, stub: cases_pb2_grpc.CaseServiceStub, zones: list[str]
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        for zone in zones:
            counts[zone] = 0
            token = ""
            while True:
                page = await stub.ListCases(
                    cases_pb2.ListCasesRequest(
                        county_id=self._county_id,
                        zone_id=zone,
                        at_risk_only=True,
                        page_size=500,
                        page_token=token,
                    ),
                    metadata=self._metadata,
                    timeout=self._call_timeout,
                )
                counts[zone] += len(page.cases)
                token = page.next_page_token
                if not token:
                    break
        return counts

    async def _submit_all(
        self, reports: list[ScriptedReport], observer: Observer
    ) -> list[_Submitted]:
        queue: asyncio.Queue[ScriptedReport] = asyncio.Queue()
        for report in reports:
            queue.put_nowait(report)
        results: list[_Submitted] = []
        async with grpc.aio.insecure_channel(self._endpoints.intake) as channel:
            stub = intake_pb2_grpc.IntakeServiceStub(channel)
            desk = self._reporter_desk(stub)

            async def worker() -> None:
                while not queue.empty():
                    report = queue.get_nowait()
                    try:
                        reply = await stub.SubmitReport(
                            submit_request(report),
                            metadata=self._metadata,
                            timeout=self._call_timeout,
                        )
                    except grpc.aio.AioRpcError as error:
                        raise DemoFailed(
                            f"intake refused scenario report {report.key}: "
                            f"{error.code().name} {error.details()}"
                        ) from error
                    registered = reply.registered_at.ToDatetime(tzinfo=UTC)
                    quarter = f"{registered.year}Q{(registered.month - 1) // 3 + 1}"
                    submitted = _Submitted(
                        reply.clue_id, reply.zone_id, quarter, report, reply.report_id
                    )
                    try:
                        accepted = await desk.accept(_answerable(submitted, None))
                    except grpc.aio.AioRpcError as error:
                        raise DemoFailed(
                            f"intake refused to accept scenario report {report.key}: "
                            f"{error.code().name} {error.details()}"
                        ) from error
                    results.append(replace(submitted, accepted=accepted))
                    observer.submitted(reply.zone_id)

            await asyncio.gather(*(worker() for _ in range(max(1, self._concurrency))))
        return results

    async def _await_registered(self, clue_ids: set[str], observer: Observer) -> None:
        async with grpc.aio.insecure_channel(self._endpoints.cases) as channel:
            stub = cases_pb2_grpc.CaseServiceStub(channel)
            deadline = time.monotonic() + self._catch_up_seconds
            while True:
                listed = await self._listed_clues(stub)
                found = len(clue_ids & listed)
                observer.registered(found)
                if found >= len(clue_ids):
                    return
                if time.monotonic() > deadline:
                    raise DemoFailed(
                        f"cases registered only {found} of {len(clue_ids)} clues in "
                        f"{self._catch_up_seconds:.0f} s (is the cases consumer running?)"
                    )
                await asyncio.sleep(1.0)

    async def _listed_clues(self, stub: cases_pb2_grpc.CaseServiceStub) -> set[str]:
        listed: set[str] = set()
        token = ""
        while True:
            page = await stub.ListClues(
                cases_pb2.ListCluesRequest(
                    county_id=self._county_id, page_size=500, page_token=token
                ),
                metadata=self._metadata,
                timeout=self._call_timeout,
            )
            listed.update(clue.clue_id for clue in page.clues)
            token = page.next_page_token
            if not token:
                return listed

    async def _await_projected(
        self, expected: int, filed: int, zones: list[str], quarters: list[str], observer: Observer
    ) -> None:
        async with grpc.aio.insecure_channel(self._endpoints.assessment) as channel:
            standings = self._standings(channel)
            deadline = time.monotonic() + self._catch_up_seconds
            while True:
                counts = await standings.counted(zones, quarters)
                counted = counts.get(CLUES_RECEIVED, 0)
                observer.projected(min(counted, expected))
                # The ranking must also see the cases filed just now, not only the clues.
                if counted >= expected and counts.get(CASES_FILED, 0) >= filed:
                    return
                if time.monotonic() > deadline:
                    raise DemoFailed(
                        f"assessment counted only {counted} of {expected} clues and "
                        f"{counts.get(CASES_FILED, 0)} of {filed} filed cases in "
                        f"{self._catch_up_seconds:.0f} s"
                    )
                await asyncio.sleep(1.0)

    def _standings(self, channel: grpc.aio.Channel) -> Standings:
        return Standings(
            assessment_pb2_grpc.AssessmentServiceStub(channel),
            county_id=self._county_id,
            metadata=self._metadata,
            call_timeout=self._call_timeout,
        )
