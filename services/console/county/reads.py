"""What each county page reads from the services, with the signed-in user's own token.

`call(stub, method, request)` is the console's gRPC helper bound to the user. A refusal of a
part of a page the user may simply not read (the registry's names, a plan not yet defined)
leaves that part out; a refusal of the page's subject propagates to the 403/404 page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc
from xiezuo.collaboration.v1 import collaboration_pb2, collaboration_pb2_grpc
from xiezuo.staffing.v1 import (
    registry_pb2,
    registry_pb2_grpc,
    staffing_pb2,
    staffing_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)

Call = Callable[[Any, str, Message], Awaitable[Any]]
T = TypeVar("T")
# One list page; a list stops after MAX_PAGES pages and says it was cut short.
PAGE_SIZE = 200
MAX_PAGES = 5
QUARTERS = (1, 2, 3, 4)


@dataclass
class Listed:
    """Everything a paged list returned, and whether it was cut short."""

    items: list[Any] = field(default_factory=list)
    truncated: bool = False


@dataclass
class Ranking:
    """A ranking's entries the user may see, with how many units were ranked in all."""

    entries: list[assessment_pb2.RankingEntry]
    ranked_units: int
    rules_version: str
    truncated: bool


@dataclass
class PlanYear:
    """A year's work plan as progress per quarter; `defined` is False when there is none."""

    defined: bool
    themes: dict[int, str] = field(default_factory=dict)
    progress: dict[int, list[assessment_pb2.TargetProgress]] = field(default_factory=dict)


class CountyReads:
    """The reads behind the county board, ranking, training, plans, campaigns and letters."""

    def __init__(self, call: Call, optional: Callable[[BaseException], bool]) -> None:
        self._call = call
        # Whether a failure only means "not for this user" or "not there" (403, 404).
        self._optional = optional

    async def _maybe(self, read: Awaitable[T]) -> T | None:
        """A read the page can do without: None when the user may not make it or it is absent."""
        try:
            return await read
        except Exception as error:
            if self._optional(error):
                return None
            raise

    async def _pages(
        self, stub: Any, method: str, make: Callable[[str], Message], items: str
    ) -> Listed:
        """Every page of a list call, up to MAX_PAGES."""
        listed = Listed()
        token = ""
        for _ in range(MAX_PAGES):
            page = await self._call(stub, method, make(token))
            listed.items.extend(getattr(page, items))
            token = page.next_page_token
            if not token:
                return listed
        listed.truncated = True
        return listed

    async def zone_names(self, county_id: str) -> dict[str, str]:
        """The registry's zone names (empty when the user may not list zones)."""
        listed = await self._maybe(
            self._pages(
                registry_pb2_grpc.RegistryServiceStub,
                "ListZones",
                lambda token: registry_pb2.ListZonesRequest(
                    county_id=county_id, page_size=PAGE_SIZE, page_token=token
                ),
                "zones",
            )
        )
        return {zone.zone_id: zone.name for zone in (listed.items if listed else [])}

    async def ranking(self, county_id: str, level: int, period: str, zone_id: str = "") -> Ranking:
        """A level's ranking for a quarter or year, every page the user may see."""

        def make(token: str) -> Message:
            return assessment_pb2.GetRankingRequest(
                county_id=county_id,
                level=level,  # type: ignore[arg-type]
                period=period,
                zone_id=zone_id,
                page_size=PAGE_SIZE,
                page_token=token,
            )

        stub = assessment_pb2_grpc.AssessmentServiceStub
        head = await self._call(stub, "GetRanking", make(""))
        entries = list(head.entries)
        token = head.next_page_token
        for _ in range(MAX_PAGES - 1):
            if not token:
                break
            page = await self._call(stub, "GetRanking", make(token))
            entries.extend(page.entries)
            token = page.next_page_token
        return Ranking(entries, head.ranked_units, head.rules_version, bool(token))

    async def explain(
        self, county_id: str, level: int, subject_id: str, quarter: str
    ) -> assessment_pb2.Scorecard:
        """A unit's scorecard with the events and cases behind each component."""
        response = await self._call(
            assessment_pb2_grpc.AssessmentServiceStub,
            "ExplainScore",
            assessment_pb2.ExplainScoreRequest(
                county_id=county_id,
                level=level,  # type: ignore[arg-type]
                subject_id=subject_id,
                quarter=quarter,
            ),
        )
        card: assessment_pb2.Scorecard = response.scorecard
        return card

    async def plan_year(self, county_id: str, year: int, zone_id: str = "") -> PlanYear:
        """The year's plan against actual, quarter by quarter (read side by side)."""
        answers = await asyncio.gather(
            *(
                self._maybe(
                    self._call(
                        assessment_pb2_grpc.AssessmentServiceStub,
                        "GetPlanProgress",
                        assessment_pb2.GetPlanProgressRequest(
                            county_id=county_id, year=year, quarter=quarter, zone_id=zone_id
                        ),
                    )
                )
                for quarter in QUARTERS
            )
        )
        plan = PlanYear(defined=any(answer is not None for answer in answers))
        for quarter, answer in zip(QUARTERS, answers, strict=True):
            if answer is not None:
                plan.themes[quarter] = answer.theme
                plan.progress[quarter] = list(answer.progress)
        return plan

    async def export_report(
        self, county_id: str, period: str, zone_id: str = ""
    ) -> assessment_pb2.ExportReportResponse:
        """Assessment's own report (HTML with charts, CSV of every scorecard) for a period."""
        request = assessment_pb2.ExportReportRequest(county_id=county_id, zone_id=zone_id)
        if len(period) == 4 and period.isdigit():
            request.year = int(period)
        else:
            request.quarter = period
        response: assessment_pb2.ExportReportResponse = await self._call(
            assessment_pb2_grpc.AssessmentServiceStub, "ExportReport", request
        )
        return response

    async def campaign(
        self, county_id: str, campaign_id: str
    ) -> assessment_pb2.GetCampaignViewResponse:
        """What a campaign produced, as assessment counts it for the user."""
        response: assessment_pb2.GetCampaignViewResponse = await self._call(
            assessment_pb2_grpc.AssessmentServiceStub,
            "GetCampaignView",
            assessment_pb2.GetCampaignViewRequest(county_id=county_id, campaign_id=campaign_id),
        )
        return response

    async def people(self, county_id: str, zone_id: str = "") -> Listed:
        """The people of a zone (or the county) the user may list; empty when they may not."""
        listed = await self._maybe(
            self._pages(
                staffing_pb2_grpc.StaffingServiceStub,
                "ListPeople",
                lambda token: staffing_pb2.ListPeopleRequest(
                    county_id=county_id, zone_id=zone_id, page_size=PAGE_SIZE, page_token=token
                ),
                "people",
            )
        )
        return listed or Listed()

    async def person(self, person_id: str) -> staffing_pb2.Person:
        """One person of the registry (refusals propagate: the page is about them)."""
        response = await self._call(
            staffing_pb2_grpc.StaffingServiceStub,
            "GetPerson",
            staffing_pb2.GetPersonRequest(person_id=person_id),
        )
        person: staffing_pb2.Person = response.person
        return person

    async def person_names(self, person_ids: Sequence[str]) -> dict[str, str]:
        """Names of people the user may read (an id they may not read keeps no name)."""
        found = await asyncio.gather(*(self._maybe(self.person(pid)) for pid in person_ids))
        return {person.person_id: person.name for person in found if person is not None}

    async def training(self, person_id: str) -> Listed:
        """A person's training records, oldest first as staffing lists them."""
        return await self._pages(
            training_pb2_grpc.TrainingServiceStub,
            "ListTraining",
            lambda token: training_pb2.ListTrainingRequest(
                person_id=person_id, page_size=PAGE_SIZE, page_token=token
            ),
            "records",
        )

    async def attendance(self, person_id: str, from_day: str, to_day: str) -> Listed:
        """A person's attendance days in a range."""
        return await self._pages(
            training_pb2_grpc.TrainingServiceStub,
            "ListAttendance",
            lambda token: training_pb2.ListAttendanceRequest(
                person_id=person_id,
                from_day=from_day,
                to_day=to_day,
                page_size=PAGE_SIZE,
                page_token=token,
            ),
            "days",
        )

    async def letters(self, county_id: str, direction: int) -> Listed:
        """The county's letters on one side (asking or asked) that the user may see."""
        return await self._pages(
            collaboration_pb2_grpc.CollaborationServiceStub,
            "ListLetters",
            lambda token: collaboration_pb2.ListLettersRequest(
                county_id=county_id,
                direction=direction,  # type: ignore[arg-type]
                page_size=PAGE_SIZE,
                page_token=token,
            ),
            "letters",
        )

    async def letter(self, letter_id: str) -> collaboration_pb2.Letter:
        """One letter (refusals propagate)."""
        response = await self._call(
            collaboration_pb2_grpc.CollaborationServiceStub,
            "GetLetter",
            collaboration_pb2.GetLetterRequest(letter_id=letter_id),
        )
        letter: collaboration_pb2.Letter = response.letter
        return letter

    async def county_names(self) -> dict[str, str]:
        """Names of the network's counties and the city commission (empty when not readable)."""
        network = await self._maybe(
            self._call(
                collaboration_pb2_grpc.CollaborationServiceStub,
                "GetNetwork",
                collaboration_pb2.GetNetworkRequest(),
            )
        )
        if network is None:
            return {}
        names = {county.county_id: county.name for county in network.counties}
        if network.city_commission_id:
            names[network.city_commission_id] = network.city_commission_name
        return names
