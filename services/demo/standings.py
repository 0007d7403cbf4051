"""What assessment says of the demo year: counts caught up, the zone ranking, the report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import grpc
from xiezuo.assessment.v1 import assessment_pb2, assessment_pb2_grpc

CLUES_RECEIVED = "clues_received"
CASES_FILED = "cases_filed"
_TIERS = {
    assessment_pb2.TIER_TOP: "reward",
    assessment_pb2.TIER_MIDDLE: "",
    assessment_pb2.TIER_BOTTOM: "correction",
}


@dataclass(frozen=True)
class RankedZone:
    """One line of the quarterly ranking."""

    rank: int
    zone_id: str
    total: float
    tier: str


def ranked_quarter(quarters: list[str], now: datetime) -> str:
    """The quarter to rank: the last of the scenario's quarters that has ended by `now`."""
    current = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    ended = [quarter for quarter in quarters if quarter < current]
    if ended:
        return ended[-1]
    return quarters[-1] if quarters else current


class Standings:
    """Reads of assessment as the county's leadership (one channel, one caller)."""

    def __init__(
        self,
        stub: assessment_pb2_grpc.AssessmentServiceStub,
        *,
        county_id: str,
        metadata: tuple[tuple[str, str], ...],
        call_timeout: float,
    ) -> None:
        self._stub = stub
        self._county_id = county_id
        self._metadata = metadata
        self._call_timeout = call_timeout

    async def counted(self, zones: list[str], quarters: list[str]) -> dict[str, int]:
        """Every KPI count, summed over the zones and quarters."""
        counts: dict[str, int] = {}
        for zone in zones:
            for quarter in quarters:
                for kpi, value in (await self._zone_counts(zone, quarter)).items():
                    counts[kpi] = counts.get(kpi, 0) + value
        return counts

    async def _zone_counts(self, zone: str, quarter: str) -> dict[str, int]:
        try:
            reply = await self._stub.GetScorecard(
                assessment_pb2.GetScorecardRequest(
                    county_id=self._county_id,
                    level=assessment_pb2.LEVEL_ZONE,
                    subject_id=zone,
                    quarter=quarter,
                ),
                metadata=self._metadata,
                timeout=self._call_timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return {}
            raise
        counted: dict[str, int] = {}
        for count in reply.scorecard.counts:
            counted[count.kpi] = counted.get(count.kpi, 0) + count.value
        return counted

    async def ranking(self, quarter: str) -> tuple[RankedZone, ...]:
        """The zones of the county ranked for the quarter, with their tiers."""
        entries: list[RankedZone] = []
        token = ""
        while True:
            page = await self._stub.GetRanking(
                assessment_pb2.GetRankingRequest(
                    county_id=self._county_id,
                    level=assessment_pb2.LEVEL_ZONE,
                    period=quarter,
                    page_token=token,
                ),
                metadata=self._metadata,
                timeout=self._call_timeout,
            )
            entries.extend(
                RankedZone(e.rank, e.subject_id, e.total, _TIERS.get(e.tier, ""))
                for e in page.entries
            )
            token = page.next_page_token
            if not token:
                return tuple(entries)

    async def export(self, year: int) -> tuple[str, str]:
        """The year's report: HTML with charts and trends, and its CSV."""
        reply = await self._stub.ExportReport(
            assessment_pb2.ExportReportRequest(county_id=self._county_id, year=year),
            metadata=self._metadata,
            timeout=self._call_timeout,
        )
        return reply.html, reply.csv
