"""What each casework page reads from the services, with the signed-in user's own token.

`call(method, request)` is the console's gRPC helper bound to the request's user; a refusal of a
part of a page that the user may simply not read (names, draws, ranking) leaves that part out,
while a refusal of the page's subject (the case itself) propagates to the 403/404 page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.message import Message
from xiezuo.assessment.v1 import assessment_pb2
from xiezuo.cases.v1 import cases_pb2
from xiezuo.staffing.v1 import registry_pb2, staffing_pb2

from services.console.casework.views import (
    NameBook,
    StageCount,
    Workload,
    awaiting,
    draw_ids,
    stage_counts,
    workloads,
)
from services.console.grpc_calls import Stubs

Call = Callable[[Callable[..., Awaitable[Any]], Message], Awaitable[Any]]
T = TypeVar("T")
# One list page; a list stops after MAX_PAGES pages and says it was cut short.
PAGE_SIZE = 500
MAX_PAGES = 4
# The files a page shows in one table: one call of at most this many (each file listed is
# read and audited by cases); a longer list says it was cut short.
TABLE_ROWS = 100
# At most this many at-risk files are opened to show their running deadlines' dates.
DEADLINE_FILES = 8
# A page naming the people of more zones than this shows their ids only.
MAX_NAMED_ZONES = 3


@dataclass
class Listed:
    """Everything a paged list returned, and whether it was cut short."""

    items: list[Any] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class RunningDeadline:
    """A time limit still running (or breached) on a file the user may see."""

    case_id: str
    kind: str
    due_at: str
    status: str
    overdue: bool


def quarter_of(moment: datetime) -> str:
    """`2026Q3` for a moment in July 2026."""
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


def previous_quarter(quarter: str) -> str:
    """The quarter before `2026Q1` is `2025Q4`."""
    year, number = int(quarter[:4]), int(quarter[5:])
    return f"{year - 1}Q4" if number == 1 else f"{year}Q{number - 1}"


class CaseworkReads:
    """The reads behind my work, the case file, the draw page and the zone board."""

    def __init__(
        self,
        stubs: Stubs,
        call: Call,
        refused: tuple[type[BaseException], ...],
        me: tuple[str, str] = ("", ""),
    ) -> None:
        self._stubs = stubs
        self._call = call
        self._refused = refused
        # The signed-in user's own id and name: staffing need not be asked for them.
        self._me = me

    async def _maybe(self, read: Awaitable[T]) -> T | None:
        """A read the page can do without: None when the user may not make it."""
        try:
            return await read
        except self._refused:
            return None

    async def list_cases(self, **filters: Any) -> Listed:
        """The first TABLE_ROWS case files matching the filters that the user may see, in id
        order (one call: cases filters and counts, the page never pages through every file)."""
        page = await self._call(
            self._stubs.cases.ListCases,
            cases_pb2.ListCasesRequest(page_size=TABLE_ROWS, **filters),
        )
        return Listed(items=list(page.cases), truncated=bool(page.next_page_token))

    async def count_by_stage(self, **filters: Any) -> cases_pb2.CountCasesByStageResponse:
        """How many of the files the user may see stand in each stage, counted by cases."""
        counted: cases_pb2.CountCasesByStageResponse = await self._call(
            self._stubs.cases.CountCasesByStage, cases_pb2.CountCasesByStageRequest(**filters)
        )
        return counted

    async def people(self, county_id: str, zone_id: str = "") -> list[staffing_pb2.Person]:
        """The people of a zone (or county) the user may list; empty when they may not."""
        found: list[staffing_pb2.Person] = []
        token = ""
        for _ in range(MAX_PAGES):
            page = await self._maybe(
                self._call(
                    self._stubs.staffing.ListPeople,
                    staffing_pb2.ListPeopleRequest(
                        county_id=county_id, zone_id=zone_id, page_size=PAGE_SIZE, page_token=token
                    ),
                )
            )
            if page is None:
                return found
            found.extend(page.people)
            token = page.next_page_token
            if not token:
                break
        return found

    async def zones(self, county_id: str) -> list[registry_pb2.Zone]:
        """The county's zones, in id order."""
        reply = await self._call(
            self._stubs.registry.ListZones,
            registry_pb2.ListZonesRequest(county_id=county_id, page_size=PAGE_SIZE),
        )
        return list(reply.zones)

    async def names(
        self, county_id: str, people: list[staffing_pb2.Person] | None = None, zone_id: str = ""
    ) -> NameBook:
        """Names of the county's zones and townships, and of the people the user may list.

        People are listed for one zone when the page is about one (every listed person's
        record read is audited, so a page does not read the whole county's for a few names).
        """
        book = NameBook()
        book.add([self._me])
        zones, townships, listed = await asyncio.gather(
            self._maybe(
                self._call(
                    self._stubs.registry.ListZones,
                    registry_pb2.ListZonesRequest(county_id=county_id, page_size=PAGE_SIZE),
                )
            ),
            self._maybe(
                self._call(
                    self._stubs.registry.ListTownships,
                    registry_pb2.ListTownshipsRequest(county_id=county_id, page_size=PAGE_SIZE),
                )
            ),
            self.people(county_id, zone_id) if people is None else _given(people),
        )
        if zones is not None:
            book.add((z.zone_id, z.name) for z in zones.zones)
        if townships is not None:
            book.add((t.township_id, t.name) for t in townships.townships)
        book.add((p.person_id, p.name) for p in listed)
        return book

    async def running_deadlines(self, cases: list[cases_pb2.CaseSummary]) -> list[RunningDeadline]:
        """The open and breached time limits of the first few of these files, soonest first."""
        files = await asyncio.gather(
            *(
                self._maybe(
                    self._call(
                        self._stubs.cases.GetCase,
                        cases_pb2.GetCaseRequest(case_id=case.case_id),
                    )
                )
                for case in cases[:DEADLINE_FILES]
            )
        )
        now = datetime.now(UTC)
        rows = []
        for file in files:
            if file is None:
                continue
            for deadline in file.deadlines:
                if deadline.status not in ("open", "breached"):
                    continue
                due = deadline.due_at.ToDatetime(tzinfo=UTC)
                rows.append(
                    (
                        due,
                        RunningDeadline(
                            case_id=file.case.case_id,
                            kind=deadline.kind,
                            due_at=due.strftime("%Y-%m-%d %H:%M"),
                            status=deadline.status,
                            overdue=deadline.status == "breached" or due < now,
                        ),
                    )
                )
        return [row for _, row in sorted(rows, key=lambda pair: pair[0])]

    async def my_work(self, *, subject: str, county_id: str, zone_id: str = "") -> MyWork:
        """The approvals waiting for the user, their own files and the deadlines at risk."""
        mine, waiting, risky = await asyncio.gather(
            self.list_cases(county_id=county_id, assignee=subject),
            self.list_cases(county_id=county_id, awaiting_caller_approval=True),
            self.list_cases(county_id=county_id, at_risk_only=True),
        )
        # cases filters the inbox; `awaiting` keeps it right against a server without the filter.
        inbox = awaiting(waiting.items)
        shown = [*inbox, *mine.items, *risky.items]
        zones = [zone_id] if zone_id else [c.zone_id for c in shown]

        async def named() -> NameBook:
            return await self.names(county_id, await self.people_of_zones(zones, county_id))

        deadlines, names = await asyncio.gather(
            self.running_deadlines(sorted(risky.items, key=lambda c: not c.overdue)), named()
        )
        return MyWork(
            inbox=inbox,
            mine=mine.items,
            at_risk=[c for c in risky.items if not c.overdue],
            breached=[c for c in risky.items if c.overdue],
            deadlines=deadlines,
            truncated=waiting.truncated or mine.truncated or risky.truncated,
            names=names,
        )

    async def people_of_zones(
        self, zone_ids: Sequence[str], county_id: str
    ) -> list[staffing_pb2.Person]:
        """The people of the zones a page shows files of, for their names; none past a few zones.

        Every person record listed is read and audited by staffing, so a county-wide page names
        the people of the zones it actually shows rather than listing the whole county.
        """
        zones = sorted(set(zone_ids) - {""})
        if not zones or len(zones) > MAX_NAMED_ZONES:
            return []
        pages = await asyncio.gather(*(self.people(county_id, zone) for zone in zones))
        return [person for page in pages for person in page]

    async def case_file(self, case_id: str) -> CaseFileView:
        """One case file with its draws, the latest draw explained, and its township's items."""
        got: cases_pb2.GetCaseResponse = await self._call(
            self._stubs.cases.GetCase, cases_pb2.GetCaseRequest(case_id=case_id)
        )
        case = got.case
        draws = draw_ids(got.history)
        explained, items, names = await asyncio.gather(
            self._maybe(self.explain(draws[-1].draw_id)) if draws else _none(),
            self._maybe(
                self._call(
                    self._stubs.cases.ListRectifications,
                    cases_pb2.ListRectificationsRequest(
                        county_id=case.county_id, zone_id=case.zone_id, page_size=PAGE_SIZE
                    ),
                )
            ),
            self.names(case.county_id, zone_id=case.zone_id),
        )
        townships = set(case.township_ids) | {case.township_id}
        return CaseFileView(
            file=got,
            draws=draws,
            latest_draw=explained,
            rectification=[i for i in (items.items if items else []) if i.township_id in townships],
            rectification_readable=items is not None,
            names=names,
        )

    async def explain(self, draw_id: str) -> staffing_pb2.DrawExplanation:
        """A recorded draw explained by staffing."""
        response = await self._call(
            self._stubs.staffing.ExplainDraw,
            staffing_pb2.ExplainDrawRequest(draw_id=draw_id),
        )
        explanation: staffing_pb2.DrawExplanation = response.draw
        return explanation

    async def draw(self, draw_id: str, *, replay: bool) -> DrawView:
        """A draw explained, and recomputed from its record when asked."""
        explained = await self.explain(draw_id)
        replayed = None
        if replay:
            replayed = await self._call(
                self._stubs.staffing.ReplayDraw,
                staffing_pb2.ReplayDrawRequest(draw_id=draw_id),
            )
        return DrawView(
            draw=explained,
            replay=replayed,
            names=await self.names(explained.county_id, zone_id=explained.zone_id),
        )

    async def zone_board(
        self, *, county_id: str, zone_id: str, quarter: str, stage: str = ""
    ) -> ZoneBoard:
        """A zone's files by stage, its deadlines at risk, its people's load and its rank."""
        files = asyncio.gather(
            self.count_by_stage(county_id=county_id, zone_id=zone_id),
            self.list_cases(county_id=county_id, zone_id=zone_id, at_risk_only=True),
            self.list_cases(county_id=county_id, zone_id=zone_id, stage=stage)
            if stage
            else _no_cases(),
        )
        (counts, risky, in_stage), people, ranking, explained, items = await asyncio.gather(
            files,
            self.people(county_id, zone_id),
            self._maybe(
                self._call(
                    self._stubs.assessment.GetRanking,
                    assessment_pb2.GetRankingRequest(
                        county_id=county_id,
                        level=assessment_pb2.LEVEL_ZONE,
                        period=quarter,
                        page_size=PAGE_SIZE,
                    ),
                )
            ),
            self._maybe(
                self._call(
                    self._stubs.assessment.ExplainScore,
                    assessment_pb2.ExplainScoreRequest(
                        county_id=county_id,
                        level=assessment_pb2.LEVEL_ZONE,
                        subject_id=zone_id,
                        quarter=quarter,
                        events_per_kpi=1,
                    ),
                )
            ),
            self._maybe(
                self._call(
                    self._stubs.cases.ListRectifications,
                    cases_pb2.ListRectificationsRequest(
                        county_id=county_id, zone_id=zone_id, open_only=True, page_size=PAGE_SIZE
                    ),
                )
            ),
        )
        names = await self.names(county_id, people)
        entry = None
        if ranking is not None:
            entry = next((e for e in ranking.entries if e.subject_id == zone_id), None)
        return ZoneBoard(
            zone_id=zone_id,
            quarter=quarter,
            clue_stages=stage_counts(counts.counts, filed=False),
            case_stages=stage_counts(counts.counts, filed=True),
            breached=[c for c in risky.items if c.overdue],
            at_risk=[c for c in risky.items if not c.overdue],
            workloads=workloads(people),
            rank=entry,
            ranked_units=ranking.ranked_units if ranking is not None else 0,
            score=explained.scorecard if explained is not None else None,
            open_items=list(items.items) if items is not None else [],
            stage=stage,
            in_stage=in_stage.items,
            truncated=risky.truncated or in_stage.truncated,
            names=names,
        )


async def _none() -> None:
    return None


async def _no_cases() -> Listed:
    return Listed()


async def _given(people: list[staffing_pb2.Person]) -> list[staffing_pb2.Person]:
    return people


@dataclass
class MyWork:
    """What the my-work page shows."""

    inbox: list[cases_pb2.CaseSummary]
    mine: list[cases_pb2.CaseSummary]
    at_risk: list[cases_pb2.CaseSummary]
    breached: list[cases_pb2.CaseSummary]
    deadlines: list[RunningDeadline]
    truncated: bool
    names: NameBook


@dataclass
class CaseFileView:
    """What the case-file page shows."""

    file: cases_pb2.GetCaseResponse
    draws: list[Any]
    latest_draw: staffing_pb2.DrawExplanation | None
    rectification: list[cases_pb2.RectificationItem]
    rectification_readable: bool
    names: NameBook


@dataclass
class DrawView:
    """A draw with its explanation and, when asked, its replay."""

    draw: staffing_pb2.DrawExplanation
    replay: staffing_pb2.ReplayDrawResponse | None
    names: NameBook


@dataclass
class ZoneBoard:
    """What the zone board shows."""

    zone_id: str
    quarter: str
    clue_stages: list[StageCount]
    case_stages: list[StageCount]
    breached: list[cases_pb2.CaseSummary]
    at_risk: list[cases_pb2.CaseSummary]
    workloads: list[Workload]
    rank: assessment_pb2.RankingEntry | None
    ranked_units: int
    score: assessment_pb2.Scorecard | None
    open_items: list[cases_pb2.RectificationItem]
    truncated: bool
    names: NameBook
    # The stage picked on the board, and the zone's files in it.
    stage: str = ""
    in_stage: list[cases_pb2.CaseSummary] = field(default_factory=list)
