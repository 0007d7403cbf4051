"""The county office's year beside the case work: plan, campaign, training, attendance,
an inspection tour's rectifications and the assessors' qualitative marks.

Each is an ordinary gRPC call as the person who does it. Training and attendance carry their
own dates; plan, campaign and marks name their year or quarter. Rectification items have no
back-entry date in cases' API, so the tour's items are opened, reported and verified today.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import grpc
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.staffing.v1 import training_pb2, training_pb2_grpc

from services.demo.casework import TokenMint
from services.demo.scenario import CountyPlan, ScenarioMix

Metadata = tuple[tuple[str, str], ...]

# DOMAIN.md §3: the annual work plan by quarter.
PLAN_THEMES = {
    1: "学习培训、队伍建设",
    2: "专项检查、专项监督",
    3: "考核评估、整改落实",
    4: "总结提升、推广经验",
}
# Targets per zone and quarter (a zone of three townships sees ~25 clues a quarter).
_PLAN_TARGETS = {"clues_disposed": 20, "cases_filed": 5}


@dataclass(frozen=True)
class TrainingDay:
    """The county's training of one quarter: a course all township staff attend."""

    quarter: int
    month: int
    day: int
    course: str
    kind: training_pb2.TrainingType.ValueType
    hours: float


TRAINING = (
    TrainingDay(
        1, 3, 10, "《中国共产党纪律处分条例》专题培训", training_pb2.TRAINING_TYPE_LECTURE, 6
    ),
    TrainingDay(
        2, 5, 19, "典型案例剖析：扶贫领域职务违法", training_pb2.TRAINING_TYPE_CASE_STUDY, 4
    ),
    TrainingDay(3, 8, 18, "审查调查全流程模拟演练", training_pb2.TRAINING_TYPE_DRILL, 8),
    TrainingDay(4, 11, 10, "赴邻县协作区交流学习", training_pb2.TRAINING_TYPE_STUDY_VISIT, 6),
)
# Besides the training day, each quarter's two work meetings (协作区例会) are on the record.
_MEETING_DAYS = ((1, 27), (2, 26))
# Where people were on a recorded day, with its weight (most at work, a few away).
_ATTENDANCE = (
    (training_pb2.ATTENDANCE_STATUS_PRESENT, 88),
    (training_pb2.ATTENDANCE_STATUS_ON_ASSIGNMENT, 5),
    (training_pb2.ATTENDANCE_STATUS_ON_LEAVE, 4),
    (training_pb2.ATTENDANCE_STATUS_ABSENT, 3),
)
# The inspection tour's findings (巡察反馈问题), three per toured township.
_TOUR_FINDINGS = (
    "村级财务公开不及时、不规范",
    "惠民资金发放台账不全，存在代签代领",
    "村集体资产出租未经民主程序",
    "党风廉政建设责任制落实不到位",
    "“三重一大”事项集体决策记录缺失",
    "工程项目招投标程序不规范",
)
_TOUR = cases_pb2.RECTIFICATION_SOURCE_INSPECTION_TOUR
_CAMPAIGN = cases_pb2.RECTIFICATION_SOURCE_CAMPAIGN
_CAMPAIGN_FINDING = "低保、特困供养对象动态管理不到位，存在优亲厚友"
_MARK_REASONS = (
    (17, "办案质量高，协作配合主动，群众满意度高"),
    (15, "工作扎实，程序规范，按时完成各项任务"),
    (13, "能完成任务，个别案件材料不够完整"),
    (11, "工作主动性不足，台账管理需加强"),
)


@dataclass(frozen=True)
class OfficeYear:
    """What the office recorded over the year."""

    plan_revision: int = 0
    campaign: str = ""
    training_records: int = 0
    attendance_days: int = 0
    rectifications_opened: int = 0
    rectifications_closed: int = 0
    qualitative_marks: int = 0


class CountyOffice:
    """The county commission's office keeping the year's non-case records."""

    def __init__(
        self,
        county: CountyPlan,
        *,
        mint: TokenMint,
        today: datetime,
        concurrency: int = 8,
        call_timeout: float = 30.0,
    ) -> None:
        self._county = county
        self._mint = mint
        self._today = today
        self._year = today.year
        self._concurrency = max(1, concurrency)
        self._timeout = call_timeout

    def _as(self, person: str, roles: Sequence[str], zone_id: str = "*") -> Metadata:
        return (("authorization", f"Bearer {self._mint(person, roles, zone_id)}"),)

    async def plan_the_year(self, channel: grpc.aio.Channel, mix: ScenarioMix) -> tuple[int, str]:
        """The Q1–Q4 work plan and the year's campaign, defined as the year begins."""
        stub = assessment_pb2_grpc.AssessmentServiceStub(channel)
        county = self._county
        assessor = self._as(county.assessor or "demo-assessor", ["assessor"])
        zones = county.zone_ids
        targets = [
            assessment_pb2.PlanTarget(
                quarter=quarter, zone_id=zone, kpi=kpi, target=target + index % 3
            )
            for quarter in PLAN_THEMES
            for index, zone in enumerate(zones)
            for kpi, target in _PLAN_TARGETS.items()
        ]
        plan = await stub.DefinePlan(
            assessment_pb2.DefinePlanRequest(
                idempotency_key=f"demo-plan-{county.county_id}-{self._year}",
                county_id=county.county_id,
                year=self._year,
                themes=[
                    assessment_pb2.QuarterTheme(quarter=q, theme=t) for q, t in PLAN_THEMES.items()
                ],
                targets=targets,
            ),
            metadata=assessor,
            timeout=self._timeout,
        )
        first, last = mix.campaign_months
        ends = date(self._year, last % 12 + 1, 1) - timedelta(days=1)
        await stub.DefineCampaign(
            assessment_pb2.DefineCampaignRequest(
                idempotency_key=f"demo-campaign-{mix.campaign_id}",
                county_id=county.county_id,
                campaign_id=mix.campaign_id,
                name="群众身边不正之风和腐败问题集中整治（惠民资金专项监督）",
                domain="poverty-alleviation-funds",
                starts_on=date(self._year, first, 1).isoformat(),
                ends_on=ends.isoformat(),
                zone_ids=list(zones),
            ),
            metadata=assessor,
            timeout=self._timeout,
        )
        return plan.revision, mix.campaign_id

    async def keep_staff_records(self, channel: grpc.aio.Channel) -> tuple[int, int]:
        """Each quarter's training day and work meetings, for every township staff member."""
        stub = training_pb2_grpc.TrainingServiceStub(channel)
        leader = self._as(self._county.county_leader, ["county_leadership"])
        calls: list[Callable[[], Awaitable[Any]]] = []
        trained = attended = 0
        for course in TRAINING:
            on = date(self._year, course.month, course.day)
            if on > self._today.date():
                continue
            for member in self._county.staff:
                took = _draw(f"{member.person_id}:{course.quarter}:training", 100) >= 8
                if took:
                    trained += 1
                    calls.append(_training(stub, leader, member.person_id, course, on))
                status = (
                    training_pb2.ATTENDANCE_STATUS_IN_TRAINING
                    if took
                    else _status(f"{member.person_id}:{on}")
                )
                calls.append(_attendance(stub, leader, member.person_id, on, status))
                attended += 1
                for offset, day in _MEETING_DAYS:
                    meeting = _weekday(date(self._year, 3 * course.quarter - 3 + offset, day))
                    if meeting > self._today.date():
                        continue
                    status = _status(f"{member.person_id}:{meeting}")
                    calls.append(_attendance(stub, leader, member.person_id, meeting, status))
                    attended += 1
        await self._all(calls)
        return trained, attended

    async def inspection_tour(self, channel: grpc.aio.Channel, campaign_id: str) -> tuple[int, int]:
        """The county party committee's inspection tour (巡察): each toured township's findings
        become rectification items the zone follows; the campaign adds one per zone."""
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        county = self._county
        opened = closed = 0
        tour = f"县委第三巡察组〔{self._year}〕"
        items: list[tuple[str, cases_pb2.RectificationSource.ValueType, str, str, str]] = []
        for zone in county.zone_ids:
            townships = [t for t in county.townships if t.zone_id == zone]
            toured = townships[_draw(f"{zone}:toured", len(townships))]
            for number in range(3):
                finding = _TOUR_FINDINGS[
                    _draw(f"{toured.township_id}:{number}", len(_TOUR_FINDINGS))
                ]
                items.append((zone, _TOUR, tour, toured.township_id, finding))
            items.append(
                (zone, _CAMPAIGN, campaign_id, townships[0].township_id, _CAMPAIGN_FINDING)
            )

        async def follow(
            index: int, item: tuple[str, cases_pb2.RectificationSource.ValueType, str, str, str]
        ) -> bool:
            zone, source, ref, township, finding = item
            chief = self._as(county.zone_chiefs.get(zone, "demo-zone-chief"), ["zone_chief"], zone)
            deputy = self._as(
                county.zone_deputies.get(zone, "demo-deputy-chief"), ["deputy_chief"], zone
            )
            key = f"demo-rect-{county.county_id}-{self._year}-{index:03d}"
            unit = f"{county.name(township)}人民政府"
            reply = await stub.OpenRectification(
                cases_pb2.OpenRectificationRequest(
                    idempotency_key=key,
                    county_id=county.county_id,
                    zone_id=zone,
                    township_id=township,
                    source=source,
                    source_ref=ref,
                    owner_unit=unit,
                    finding=finding,
                ),
                metadata=chief,
                timeout=self._timeout,
            )
            item_id = reply.item.item_id
            if reply.item.status != "open":
                return reply.item.status == "closed"
            # Most units rectify in full; some are found not done yet; a few still report.
            stage = _draw(key, 6)
            percent = 100 if stage < 4 else 60
            await stub.ReportRectificationProgress(
                cases_pb2.ReportRectificationProgressRequest(
                    idempotency_key=f"{key}:progress",
                    item_id=item_id,
                    note="已制定整改方案，逐项销号" if percent == 100 else "整改推进中",
                    percent_done=percent,
                ),
                metadata=deputy,
                timeout=self._timeout,
            )
            if stage == 5:
                return False
            done = stage < 4
            verified = await stub.VerifyRectification(
                cases_pb2.VerifyRectificationRequest(
                    idempotency_key=f"{key}:verify",
                    item_id=item_id,
                    done=done,
                    note="经实地核查，整改到位" if done else "核查发现台账仍未补齐，继续整改",
                ),
                metadata=chief,
                timeout=self._timeout,
            )
            return verified.item.status == "closed"

        results = await asyncio.gather(*(follow(i, item) for i, item in enumerate(items)))
        opened = len(results)
        closed = sum(results)
        return opened, closed

    async def mark_quarters(self, channel: grpc.aio.Channel) -> int:
        """The assessors' qualitative marks (定性评价) for every zone and staff member, per
        quarter that has ended."""
        stub = assessment_pb2_grpc.AssessmentServiceStub(channel)
        county = self._county
        assessor = self._as(county.assessor or "demo-assessor", ["assessor"])
        current = (self._today.month - 1) // 3 + 1
        subjects = [(assessment_pb2.LEVEL_ZONE, zone) for zone in county.zone_ids] + [
            (assessment_pb2.LEVEL_PERSON, member.person_id) for member in county.staff
        ]
        calls: list[Callable[[], Awaitable[Any]]] = []
        for quarter in range(1, current):
            period = f"{self._year}Q{quarter}"
            for level, subject in subjects:
                band, reason = _MARK_REASONS[_draw(f"{subject}:{period}:mark", 4)]
                # Half a point either way, so marks differ between people of one band.
                points = band + (_draw(f"{subject}:{period}:half", 3) - 1) * 0.5
                calls.append(
                    _mark(stub, assessor, county.county_id, level, subject, period, points, reason)
                )
        await self._all(calls)
        return len(calls)

    async def _all(self, calls: Sequence[Callable[[], Awaitable[Any]]]) -> None:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(call: Callable[[], Awaitable[Any]]) -> None:
            async with gate:
                await call()

        await asyncio.gather(*(one(call) for call in calls))


def _draw(key: str, size: int) -> int:
    # crc32, not random: every run of the demo records the same year.
    return zlib.crc32(key.encode()) % size


def _status(key: str) -> int:
    draw = _draw(key, sum(weight for _, weight in _ATTENDANCE))
    for status, weight in _ATTENDANCE:
        if draw < weight:
            return status
        draw -= weight
    return training_pb2.ATTENDANCE_STATUS_PRESENT


def _weekday(day: date) -> date:
    """The day itself, or the Monday after a weekend."""
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)


def _training(
    stub: training_pb2_grpc.TrainingServiceStub,
    metadata: Metadata,
    person: str,
    course: TrainingDay,
    on: date,
) -> Callable[[], Awaitable[Any]]:
    request = training_pb2.RecordTrainingRequest(
        idempotency_key=f"demo-training-{person}-{on}",
        person_id=person,
        course=course.course,
        training_type=course.kind,
        hours=course.hours,
        date=on.isoformat(),
    )
    return lambda: stub.RecordTraining(request, metadata=metadata, timeout=30)


def _attendance(
    stub: training_pb2_grpc.TrainingServiceStub,
    metadata: Metadata,
    person: str,
    day: date,
    status: int,
) -> Callable[[], Awaitable[Any]]:
    request = training_pb2.RecordAttendanceRequest(
        idempotency_key=f"demo-attendance-{person}-{day}",
        person_id=person,
        day=day.isoformat(),
        status=status,  # type: ignore[arg-type]
    )
    return lambda: stub.RecordAttendance(request, metadata=metadata, timeout=30)


def _mark(
    stub: assessment_pb2_grpc.AssessmentServiceStub,
    metadata: Metadata,
    county_id: str,
    level: int,
    subject: str,
    quarter: str,
    points: float,
    reason: str,
) -> Callable[[], Awaitable[Any]]:
    request = assessment_pb2.RecordQualitativeScoreRequest(
        idempotency_key=f"demo-mark-{subject}-{quarter}",
        county_id=county_id,
        level=level,  # type: ignore[arg-type]
        subject_id=subject,
        quarter=quarter,
        points=points,
        reason=reason,
    )
    return lambda: stub.RecordQualitativeScore(request, metadata=metadata, timeout=30)
