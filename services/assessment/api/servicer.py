"""gRPC face of assessment: one servicer assembled from its parts (one file per concern)."""

from __future__ import annotations

from xiezuo.assessment.v1 import assessment_pb2_grpc

from services.assessment.api.campaign_calls import CampaignCalls
from services.assessment.api.commands import PlanCommands
from services.assessment.api.quarters import QuarterCommands
from services.assessment.api.scores import ScoreQueries
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.store.scorecards import Scoring
from services.runtime.db import Database


class AssessmentServicer(
    ScoreQueries,
    PlanCommands,
    QuarterCommands,
    CampaignCalls,
    assessment_pb2_grpc.AssessmentServiceServicer,
):
    """Scorecards, rankings, explanations, qualitative marks, plans, quarters, campaigns."""

    def __init__(self, database: Database, scoring: Scoring, calendar: AssessmentCalendar) -> None:
        self._db = database
        self._scoring = scoring
        self._calendar = calendar
