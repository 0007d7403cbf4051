"""Answers the scenario's reporters on their paper dates: acceptance (受理), then the result.

A real-name reporter is owed word of acceptance within 15 working days and of the result
within 15 working days after closure; the demo's offices answer within days, entered after
the fact like the rest of the year. Anonymous reports are accepted too, and told nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.demo.casework import TokenMint
from services.demo.timeline import NotYet, PaperClock

_RESULT_NOTE = "经核查，您反映的问题已依规依纪处理完毕。"


@dataclass(frozen=True)
class Answerable:
    """A scenario report as the reporter desk needs it."""

    key: str
    report_id: str
    zone_id: str
    real_name: bool
    registered_at: datetime
    # When its clue concluded on paper (closed or decided); None while it is still open.
    concluded_at: datetime | None = None


@dataclass(frozen=True)
class Answered:
    """How many reports were accepted and how many reporters were told the result."""

    accepted: int
    results_told: int


class ReporterDesk:
    """The zones' intake officers deciding acceptance and telling results, as back-entries."""

    def __init__(
        self,
        stub: intake_pb2_grpc.IntakeServiceStub,
        *,
        mint: TokenMint,
        today: datetime,
        call_timeout: float = 30.0,
        conclusion_wait_seconds: float = 60.0,
    ) -> None:
        self._stub = stub
        self._mint = mint
        self._today = today
        self._call_timeout = call_timeout
        self._conclusion_wait = conclusion_wait_seconds

    def _officer(self, zone_id: str) -> tuple[tuple[str, str], ...]:
        token = self._mint(f"demo-intake-{zone_id}", ["intake_officer"], zone_id)
        return (("authorization", f"Bearer {token}"),)

    async def tell_results(self, reports: Sequence[Answerable], *, concurrency: int = 8) -> int:
        """Tell each real-name reporter of a concluded clue the result; how many were told."""
        gate = asyncio.Semaphore(max(1, concurrency))

        async def tell(report: Answerable) -> bool:
            async with gate:
                return await self._tell(report)

        owed = [r for r in reports if r.real_name and r.concluded_at is not None]
        return sum(await asyncio.gather(*(tell(report) for report in owed)))

    async def accept(self, report: Answerable) -> bool:
        """Accept the report (受理) on its paper date; False when that date is after today.

        Called as soon as the report is registered: acceptance comes before the clue moves on.
        """
        try:
            when = PaperClock(report.key, report.registered_at, today=self._today).next(
                "decide_acceptance"
            )
        except NotYet:
            return False
        request = intake_pb2.DecideAcceptanceRequest(
            report_id=report.report_id,
            outcome=intake_pb2.ACCEPTANCE_OUTCOME_ACCEPT,
            reason="符合受理条件，予以受理。",
            idempotency_key=f"{report.key}:accept",
        )
        request.effective_at.FromDatetime(when)
        await self._stub.DecideAcceptance(
            request, metadata=self._officer(report.zone_id), timeout=self._call_timeout
        )
        return True

    async def _tell(self, report: Answerable) -> bool:
        assert report.concluded_at is not None
        try:
            when = PaperClock(report.key, report.concluded_at, today=self._today).next(
                "record_result_feedback"
            )
        except NotYet:
            return False  # still within its limit: the office tells the reporter later
        request = intake_pb2.RecordResultFeedbackRequest(
            idempotency_key=f"{report.key}:result",
            report_id=report.report_id,
            channel_note=_RESULT_NOTE,
        )
        request.effective_at.FromDatetime(when)
        until = time.monotonic() + self._conclusion_wait
        while True:
            try:
                await self._stub.RecordResultFeedback(
                    request, metadata=self._officer(report.zone_id), timeout=self._call_timeout
                )
                return True
            except grpc.aio.AioRpcError as error:
                # Intake learns of the closure from cases' events: wait for it, not forever.
                if error.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                if time.monotonic() > until:
                    return False
                await asyncio.sleep(0.5)
