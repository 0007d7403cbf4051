"""AssessmentService over a real gRPC endpoint and database: scorecards, explanations,
rankings with page tokens, qualitative marks, work plans, and who may see what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2
from sqlmodel import func, select
from xiezuo.assessment.v1 import assessment_pb2 as pb
from xiezuo.assessment.v1 import assessment_pb2_grpc

from services.assessment.api.servicer import AssessmentServicer
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.domain.scoring_rules import load_rules
from services.assessment.handlers import mappers
from services.assessment.handlers.ledgers import ledgers
from services.assessment.handlers.projection import ProjectionHandler, township_placed, unit_named
from services.assessment.store.scorecards import Scoring
from services.assessment.store.tables import QualitativeMark
from services.contracts.assessment import ScorecardPublished
from services.contracts.base import IntegrationEvent
from services.contracts.cases import CaseFiled, CaseTransferred, StageChanged
from services.contracts.intake import ClueRegistered, ReportedSubject
from services.contracts.staffing import (
    TeamAssigned,
    TeamMember,
    TeamUnfillable,
    TownshipPlaced,
    UnitNamed,
)
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.errors import field_violations, status_of
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.messaging_tables import OutboxMessage
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier
from tests.conftest import MakeDatabase

ISSUER, AUDIENCE, COUNTY = "xiezuo-test", "xiezuo", "c1"
Q3 = datetime(2026, 8, 1, tzinfo=UTC)
ASSESSOR = Principal("assessor-1", frozenset({"assessor"}), COUNTY, ("*",))
CHIEF_Z1 = Principal("chief-1", frozenset({"zone_chief"}), COUNTY, ("z1",))
STAFF_P1 = Principal("p1", frozenset({"case_officer"}), COUNTY, ("z1",))
LEADER = Principal("leader", frozenset({"county_leadership"}), COUNTY, ("*",))


@dataclass
class Client:
    stub: Any
    issuer: TokenIssuer
    database: Database

    def as_(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.issuer.issue(principal)}"),)


def _team(zone: str, event_id: str, *people: tuple[str, str]) -> tuple[IntegrationEvent, str]:
    members = [TeamMember(person_id=p, home_township_id=t) for p, t in people]
    return (
        TeamAssigned(
            county_id=COUNTY,
            zone_id=zone,
            request_id=f"r-{event_id}",
            case_id=f"k-{event_id}",
            stage="investigation",
            draw_id=f"d-{event_id}",
            members=members,
            assigned_at=Q3,
        ),
        event_id,
    )


def _investigation_reported(zone: str, event_id: str, case_id: str) -> tuple[IntegrationEvent, str]:
    step = StageChanged(
        county_id=COUNTY,
        zone_id=zone,
        case_id=case_id,
        township_id="t2",
        action="submit_investigation_report",
        from_stage="investigation",
        to_stage="hearing_pending",
        actor="p1",
        rule_version="cn-default-2026.1",
        occurred_at=Q3 + timedelta(days=20),
    )
    return step, event_id


async def _seed(database: Database) -> None:
    calendar = AssessmentCalendar()
    events = [
        _team("z1", "e1", ("p1", "t2"), ("p2", "t2")),
        _team("z1", "e2", ("p1", "t3")),
        _team("z2", "e3", ("p9", "t5")),
        # The team of k-e1 finishes its investigation: p1 and p2 complete a stage.
        _investigation_reported("z1", "e5", "k-e1"),
        # z2 transfers a case with 双开: one person in the fourth form.
        (
            CaseTransferred(
                county_id=COUNTY,
                zone_id="z2",
                case_id="k-t",
                township_id="t5",
                action="approve_decision",
                from_stage="decision_proposed",
                to_stage="transferred",
                actor="p9",
                rule_version="cn-default-2026.1",
                occurred_at=Q3,
                detail={
                    "decision": "transfer",
                    "sanctions": [
                        {"track": "party", "kind": "expulsion", "effect_months": 0},
                        {"track": "government", "kind": "expulsion", "effect_months": 0},
                    ],
                },
            ),
            "e6",
        ),
        (
            TeamUnfillable(
                county_id=COUNTY,
                zone_id="z3",
                request_id="r4",
                case_id="k4",
                stage="hearing",
                draw_id="d4",
                reasons=["none eligible"],
                decided_at=Q3,
            ),
            "e4",
        ),
    ]
    by_type = {p.event_class.event_type: p.mapper for p in mappers.projections()}
    extra = ledgers(calendar)
    async with database.transaction() as session:
        for name_event in (
            UnitNamed(county_id=COUNTY, zone_id="z1", kind="zone", unit_id="z1", name="第一协作区"),
            UnitNamed(county_id=COUNTY, zone_id="z1", kind="person", unit_id="p1", name="李明"),
        ):
            envelope = Envelope(
                name_event.unit_id, name_event.event_type, "t", Q3, COUNTY, "z1", b"{}"
            )
            await unit_named(session, name_event, envelope)
        for event, event_id in events:
            envelope = Envelope(event_id, event.event_type, "t", Q3, COUNTY, event.zone_id, b"{}")
            handler = ProjectionHandler(
                by_type[event.event_type], calendar, extra.get(event.event_type, ())
            )
            await handler(session, event, envelope)


@pytest.fixture
async def client(make_database: MakeDatabase) -> AsyncIterator[Client]:
    database = await make_database("assessment")
    await _seed(database)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    servicer = AssessmentServicer(database, Scoring(load_rules()), AssessmentCalendar())
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=["xiezuo.assessment.v1.AssessmentService"],
        register=lambda server: assessment_pb2_grpc.add_AssessmentServiceServicer_to_server(
            servicer, server
        ),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Client(
            assessment_pb2_grpc.AssessmentServiceStub(channel),
            TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE),
            database,
        )
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


async def _denied(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_scorecard_and_explanation_down_to_events(client: Client) -> None:
    request = pb.ExplainScoreRequest(
        county_id=COUNTY, level=pb.LEVEL_PERSON, subject_id="p1", quarter="2026Q3"
    )
    card = (await client.stub.ExplainScore(request, metadata=client.as_(ASSESSOR))).scorecard
    # 30 base + one investigation finished (3) + all of it on time (7); k-e2 is still open.
    assert (card.name, card.total) == ("李明", 40.0)
    explained = {c.kpi: list(c.event_ids) for c in card.components if c.kpi}
    assert explained["stages_completed.investigation"] == ["e5"]
    assert explained["stages_completed_in_time"] == ["e5"]
    assert explained["stages_completed.verification"] == []
    assert {c.kpi: c.value for c in card.counts}["team_assignments"] == 2
    township = await client.stub.GetScorecard(
        pb.GetScorecardRequest(
            county_id=COUNTY, level=pb.LEVEL_TOWNSHIP, subject_id="t2", quarter="2026Q3"
        ),
        metadata=client.as_(LEADER),
    )
    # t2's postings, and the investigation of k-e1 (a t2 case) finished within its limit.
    assert [(c.kpi, c.value) for c in township.scorecard.counts] == [
        ("investigations_finished", 1),
        ("investigations_finished_in_time", 1),
        ("team_assignments", 2),
    ]


async def test_an_explanation_names_the_cases_behind_each_component(client: Client) -> None:
    async def cases_by_kpi(level: Any, subject: str) -> dict[str, list[str]]:
        request = pb.ExplainScoreRequest(
            county_id=COUNTY, level=level, subject_id=subject, quarter="2026Q3"
        )
        card = (await client.stub.ExplainScore(request, metadata=client.as_(LEADER))).scorecard
        return {c.kpi: list(c.case_ids) for c in card.components if c.kpi}

    # A count judged when read (teams drawn) and a counted event (a team that could not be
    # drawn) both lead to their cases; a count with no events has none.
    z1 = await cases_by_kpi(pb.LEVEL_ZONE, "z1")
    assert (z1["teams_assigned"], z1["cases_filed"]) == (["k-e1", "k-e2"], [])
    assert (await cases_by_kpi(pb.LEVEL_ZONE, "z3"))["teams_unfillable"] == ["k4"]
    # A staff member's investigation finished on time: the step of k-e1.
    p1 = await cases_by_kpi(pb.LEVEL_PERSON, "p1")
    assert p1["stages_completed_in_time"] == ["k-e1"]
    # GetScorecard does not explain, so it names no cases.
    plain = await client.stub.GetScorecard(
        pb.GetScorecardRequest(
            county_id=COUNTY, level=pb.LEVEL_ZONE, subject_id="z1", quarter="2026Q3"
        ),
        metadata=client.as_(LEADER),
    )
    assert not any(c.case_ids for c in plain.scorecard.components)


async def test_bad_requests_name_their_fields(client: Client) -> None:
    error = await _denied(
        client.stub.GetScorecard(
            pb.GetScorecardRequest(county_id=COUNTY, quarter="2026Q9"),
            metadata=client.as_(ASSESSOR),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(error)} == {"level", "subject_id", "quarter"}


async def test_ranking_pages_and_tiers(client: Client) -> None:
    entries: list[pb.RankingEntry] = []
    token = ""
    while True:
        page = await client.stub.GetRanking(
            pb.GetRankingRequest(
                county_id=COUNTY,
                level=pb.LEVEL_ZONE,
                period="2026Q3",
                page_size=1,
                page_token=token,
            ),
            metadata=client.as_(ASSESSOR),
        )
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            break
    # z1 and z2 tie on the base (teams do not score for zones); z3 lost a point.
    assert [(e.subject_id, e.rank, e.tier) for e in entries] == [
        ("z1", 1, pb.TIER_TOP),
        ("z2", 1, pb.TIER_TOP),
        ("z3", 3, pb.TIER_BOTTOM),
    ]
    # Names beside ids, and the four forms of the people each zone dealt with.
    assert [e.name for e in entries] == ["第一协作区", "", ""]
    assert entries[1].four_forms == pb.FourForms(people=1, form_4=1)
    assert entries[0].four_forms == pb.FourForms()
    year = await client.stub.GetRanking(
        pb.GetRankingRequest(county_id=COUNTY, level=pb.LEVEL_ZONE, period="2026"),
        metadata=client.as_(ASSESSOR),
    )
    # Mean of four quarters; the idle quarters score the base (50).
    assert [(e.subject_id, e.total) for e in year.entries] == [
        ("z1", 50.0),
        ("z2", 50.0),
        ("z3", 49.75),
    ]
    assert year.entries[1].four_forms.form_4 == 1
    foreign = await _denied(
        client.stub.GetRanking(
            pb.GetRankingRequest(
                county_id=COUNTY, level=pb.LEVEL_TOWNSHIP, period="2026Q3", page_token=token or "x"
            ),
            metadata=client.as_(ASSESSOR),
        )
    )
    assert foreign.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_zone_chief_sees_their_zone_and_staff_their_own_card(client: Client) -> None:
    ranking = await client.stub.GetRanking(
        pb.GetRankingRequest(county_id=COUNTY, level=pb.LEVEL_ZONE, period="2026Q3"),
        metadata=client.as_(CHIEF_Z1),
    )
    assert [(e.subject_id, e.rank) for e in ranking.entries] == [("z1", 1)]
    assert ranking.ranked_units == 3
    people = await client.stub.GetRanking(
        pb.GetRankingRequest(county_id=COUNTY, level=pb.LEVEL_PERSON, period="2026Q3"),
        metadata=client.as_(CHIEF_Z1),
    )
    assert sorted(e.subject_id for e in people.entries) == ["p1", "p2"]
    other_zone = await _denied(
        client.stub.GetScorecard(
            pb.GetScorecardRequest(
                county_id=COUNTY, level=pb.LEVEL_ZONE, subject_id="z2", quarter="2026Q3"
            ),
            metadata=client.as_(CHIEF_Z1),
        )
    )
    assert other_zone.code() == grpc.StatusCode.PERMISSION_DENIED
    own = await client.stub.GetScorecard(
        pb.GetScorecardRequest(
            county_id=COUNTY, level=pb.LEVEL_PERSON, subject_id="p1", quarter="2026Q3"
        ),
        metadata=client.as_(STAFF_P1),
    )
    assert own.scorecard.total == 40.0
    colleague = await _denied(
        client.stub.GetScorecard(
            pb.GetScorecardRequest(
                county_id=COUNTY, level=pb.LEVEL_PERSON, subject_id="p2", quarter="2026Q3"
            ),
            metadata=client.as_(STAFF_P1),
        )
    )
    assert colleague.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_zone_that_does_not_exist_has_no_scorecard(client: Client) -> None:
    request = pb.GetScorecardRequest(
        county_id=COUNTY, level=pb.LEVEL_ZONE, subject_id="z-nowhere", quarter="2026Q3"
    )
    error = await _denied(client.stub.GetScorecard(request, metadata=client.as_(ASSESSOR)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    status = status_of(error)
    assert status is not None
    info = error_details_pb2.ResourceInfo()
    assert status.details[0].Unpack(info)
    assert (info.resource_type, info.resource_name) == ("zone", "z-nowhere")
    # A zone the registry placed a township in is assessed even while idle.
    placed = TownshipPlaced(
        county_id=COUNTY,
        zone_id="z-idle",
        township_id="t-idle",
        township_name="idle",
        effective_from=Q3.date(),
    )
    envelope = Envelope("e-placed", placed.event_type, "t", Q3, COUNTY, "z-idle", b"{}")
    async with client.database.transaction() as session:
        await township_placed(session, placed, envelope)
    request.subject_id = "z-idle"
    idle = await client.stub.GetScorecard(request, metadata=client.as_(ASSESSOR))
    assert idle.scorecard.subject_id == "z-idle"


async def test_a_mark_for_an_over_long_subject_id_is_invalid_argument(client: Client) -> None:
    """Found by the fuzz suite: PostgreSQL refused the row and the call answered INTERNAL."""
    request = pb.RecordQualitativeScoreRequest(
        idempotency_key="mark-long",
        county_id=COUNTY,
        level=pb.LEVEL_PERSON,
        subject_id="x" * 65,
        quarter="2026Q3",
        points=5,
        reason="a mark",
    )
    error = await _denied(
        client.stub.RecordQualitativeScore(request, metadata=client.as_(ASSESSOR))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(error)] == ["subject_id"]
    async with client.database.session() as session:
        assert (await session.exec(select(func.count()).select_from(QualitativeMark))).one() == 0


async def test_qualitative_marks_are_idempotent_validated_and_scored(client: Client) -> None:
    request = pb.RecordQualitativeScoreRequest(
        idempotency_key="mark-1",
        county_id=COUNTY,
        level=pb.LEVEL_ZONE,
        subject_id="z3",
        quarter="2026Q3",
        points=18,
        reason="thorough rectification follow-up",
    )
    first = await client.stub.RecordQualitativeScore(request, metadata=client.as_(ASSESSOR))
    again = await client.stub.RecordQualitativeScore(request, metadata=client.as_(ASSESSOR))
    assert first == again and first.points == 18.0
    too_many = pb.RecordQualitativeScoreRequest()
    too_many.CopyFrom(request)
    too_many.idempotency_key, too_many.points = "mark-2", 21
    error = await _denied(
        client.stub.RecordQualitativeScore(too_many, metadata=client.as_(ASSESSOR))
    )
    assert [field for field, _ in field_violations(error)] == ["points"]
    reused = pb.RecordQualitativeScoreRequest()
    reused.CopyFrom(request)
    reused.points = 5
    error = await _denied(client.stub.RecordQualitativeScore(reused, metadata=client.as_(ASSESSOR)))
    assert [field for field, _ in field_violations(error)] == ["idempotency_key"]
    denied = pb.RecordQualitativeScoreRequest()
    denied.CopyFrom(request)
    denied.idempotency_key = "mark-3"
    error = await _denied(client.stub.RecordQualitativeScore(denied, metadata=client.as_(CHIEF_Z1)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    async with client.database.session() as session:
        assert (await session.exec(select(func.count()).select_from(QualitativeMark))).one() == 1
    card = await client.stub.GetScorecard(
        pb.GetScorecardRequest(
            county_id=COUNTY, level=pb.LEVEL_ZONE, subject_id="z3", quarter="2026Q3"
        ),
        metadata=client.as_(ASSESSOR),
    )
    assert (card.scorecard.quantitative, card.scorecard.total) == (49.0, 67.0)


async def test_work_plan_and_progress(client: Client) -> None:
    plan = pb.DefinePlanRequest(
        idempotency_key="plan-1",
        county_id=COUNTY,
        year=2026,
        themes=[pb.QuarterTheme(quarter=1, theme="training")],
        targets=[
            pb.PlanTarget(quarter=3, zone_id="z1", kpi="teams_assigned", target=4),
            pb.PlanTarget(quarter=3, zone_id="z2", kpi="teams_assigned", target=1),
        ],
    )
    assert (await client.stub.DefinePlan(plan, metadata=client.as_(LEADER))).revision == 1
    assert (await client.stub.DefinePlan(plan, metadata=client.as_(LEADER))).revision == 1
    bad = pb.DefinePlanRequest(
        idempotency_key="plan-2",
        county_id=COUNTY,
        year=2026,
        targets=[pb.PlanTarget(quarter=7, zone_id="z1", kpi="nonsense", target=0)],
    )
    error = await _denied(client.stub.DefinePlan(bad, metadata=client.as_(LEADER)))
    assert {field for field, _ in field_violations(error)} == {
        "targets[0].quarter",
        "targets[0].kpi",
        "targets[0].target",
    }
    progress = await client.stub.GetPlanProgress(
        pb.GetPlanProgressRequest(county_id=COUNTY, year=2026, quarter=3),
        metadata=client.as_(CHIEF_Z1),
    )
    assert progress.theme == "evaluation and rectification"
    assert [(p.target.zone_id, p.actual, p.percent, p.met) for p in progress.progress] == [
        ("z1", 2, 50.0, False)
    ]


async def test_closing_a_quarter_publishes_every_scorecard_once(client: Client) -> None:
    close = pb.CloseQuarterRequest(idempotency_key="close-1", county_id=COUNTY, quarter="2026Q3")
    denied = await _denied(client.stub.CloseQuarter(close, metadata=client.as_(CHIEF_Z1)))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    first = await client.stub.CloseQuarter(close, metadata=client.as_(LEADER))
    again = await client.stub.CloseQuarter(close, metadata=client.as_(LEADER))
    # 3 zones, townships t2 t3 t5, people p1 p2 p9.
    assert first == again and first.published == 9
    other_key = pb.CloseQuarterRequest(
        idempotency_key="close-2", county_id=COUNTY, quarter="2026Q3"
    )
    twice = await _denied(client.stub.CloseQuarter(other_key, metadata=client.as_(LEADER)))
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION
    future = pb.CloseQuarterRequest(idempotency_key="close-3", county_id=COUNTY, quarter="2099Q1")
    early = await _denied(client.stub.CloseQuarter(future, metadata=client.as_(LEADER)))
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    async with client.database.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.event_type == ScorecardPublished.event_type
                )
            )
        ).all()
    published = [ScorecardPublished.model_validate_json(row.payload) for row in rows]
    assert len(published) == 9
    z3 = next(e for e in published if e.level == "zone" and e.unit_id == "z3")
    assert (z3.total, z3.rank, z3.tier, z3.zone_id) == (Decimal("49.00"), 3, "bottom", "z3")


async def test_report_export_is_scoped(client: Client) -> None:
    own = await client.stub.ExportReport(
        pb.ExportReportRequest(county_id=COUNTY, quarter="2026Q3", zone_id="z1"),
        metadata=client.as_(CHIEF_Z1),
    )
    subjects = {line.split(",")[2] for line in own.csv.splitlines()[1:]}
    assert subjects == {"z1", "t2", "t3", "p1", "p2"}
    assert "<svg" in own.html
    whole = await _denied(
        client.stub.ExportReport(
            pb.ExportReportRequest(county_id=COUNTY, quarter="2026Q3"),
            metadata=client.as_(CHIEF_Z1),
        )
    )
    assert whole.code() == grpc.StatusCode.PERMISSION_DENIED
    year = await client.stub.ExportReport(
        pb.ExportReportRequest(county_id=COUNTY, year=2026, zone_id="z1"),
        metadata=client.as_(CHIEF_Z1),
    )
    assert {line.split(",")[0] for line in year.csv.splitlines()[1:]} == {"2026"}
    assert "<th>2026Q3</th>" in year.html
    both = await _denied(
        client.stub.ExportReport(
            pb.ExportReportRequest(county_id=COUNTY, year=2026, quarter="2026Q3", zone_id="z1"),
            metadata=client.as_(CHIEF_Z1),
        )
    )
    assert both.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_campaign_view_counts_its_clues_and_their_cases(client: Client) -> None:
    define = pb.DefineCampaignRequest(
        idempotency_key="camp-1",
        county_id=COUNTY,
        campaign_id="funds-2026",
        name="扶贫资金专项监督",
        domain="poverty-alleviation-funds",
        starts_on="2026-04-01",
        ends_on="2026-09-30",
        zone_ids=["z1", "z2"],
    )
    bad = pb.DefineCampaignRequest()
    bad.CopyFrom(define)
    bad.idempotency_key, bad.ends_on = "camp-2", "2026-03-01"
    error = await _denied(client.stub.DefineCampaign(bad, metadata=client.as_(LEADER)))
    assert [field for field, _ in field_violations(error)] == ["ends_on"]
    assert (await client.stub.DefineCampaign(define, metadata=client.as_(LEADER))).campaign_id

    by_type = {p.event_class.event_type: p.mapper for p in mappers.projections()}
    extra = ledgers()
    steps: list[IntegrationEvent] = [
        _campaign_clue("k-a", "z1", ["misuse-of-funds", "fake-claims"], "funds-2026"),
        _campaign_clue("k-b", "z2", ["misuse-of-funds"], "funds-2026"),
        _campaign_clue("k-c", "z1", ["misuse-of-funds"], None),
        CaseFiled(
            county_id=COUNTY,
            zone_id="z1",
            case_id="k-a",
            township_id="t1",
            action="approve_filing",
            from_stage="filing_proposed",
            to_stage="investigation",
            actor="head",
            rule_version="r1",
            occurred_at=Q3,
        ),
    ]
    async with client.database.transaction() as session:
        for index, event in enumerate(steps):
            envelope = Envelope(f"c{index}", event.event_type, "t", Q3, COUNTY, event.zone_id, b"")
            handler = ProjectionHandler(
                by_type[event.event_type], AssessmentCalendar(), extra.get(event.event_type, ())
            )
            await handler(session, event, envelope)

    view = await client.stub.GetCampaignView(
        pb.GetCampaignViewRequest(county_id=COUNTY, campaign_id="funds-2026"),
        metadata=client.as_(ASSESSOR),
    )
    assert [(t.key, t.count) for t in view.clues_by_category] == [
        ("fake-claims", 1),
        ("misuse-of-funds", 2),
    ]
    assert [(t.key, t.count) for t in view.case_milestones] == [("filed", 1)]
    chief = await client.stub.GetCampaignView(
        pb.GetCampaignViewRequest(county_id=COUNTY, campaign_id="funds-2026"),
        metadata=client.as_(CHIEF_Z1),
    )
    assert [(t.key, t.count) for t in chief.clues_by_zone] == [("z1", 1)]
    staff = await _denied(
        client.stub.GetCampaignView(
            pb.GetCampaignViewRequest(county_id=COUNTY, campaign_id="funds-2026"),
            metadata=client.as_(STAFF_P1),
        )
    )
    assert staff.code() == grpc.StatusCode.PERMISSION_DENIED


def _campaign_clue(
    clue_id: str, zone: str, categories: list[str], campaign: str | None
) -> ClueRegistered:
    return ClueRegistered(
        county_id=COUNTY,
        zone_id=zone,
        clue_id=clue_id,
        report_id=f"r-{clue_id}",
        township_id="t1",
        channel="special_campaign",
        allegation_categories=categories,
        subject=ReportedSubject(
            name="某某", post="主任", unit="某村", township_id="t1", cadre_level="village"
        ),
        real_name=False,
        campaign_id=campaign,
        received_at=Q3,
        registered_at=Q3,
    )
