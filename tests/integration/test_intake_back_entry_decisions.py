"""Back-entry (补录) of intake's two officer decisions over real gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlmodel import col, select
from xiezuo.intake.v1 import intake_pb2

from services.contracts.cases import CaseClosed
from services.intake.handlers.case_progress import CaseProgressHandler
from services.intake.store.acceptance import AcceptanceDesk
from services.intake.store.result_feedback import ResultDesk
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReporterMessageRow, ReportRow
from services.runtime.audit import AuditEntry
from services.runtime.backentry import BACK_ENTRY_GRACE, BACK_ENTRY_ROLE
from services.runtime.db import Database, as_utc
from services.runtime.envelope import Envelope
from services.runtime.grpc.errors import field_violations
from tests.integration import intake_api
from tests.integration.intake_api import VAULT, WINDOW_DAYS, Api
from tests.integration.intake_api import ago as _ago
from tests.integration.intake_api import events as _events
from tests.integration.intake_api import stamp as _stamp

ACCEPTED_TYPE = "xiezuo.intake.report_accepted.v1"
GIVEN_TYPE = "xiezuo.intake.result_feedback_given.v1"
BREACH_TYPE = "xiezuo.intake.feedback_deadline_breached.v1"
BOOK = load_rule_book()

# The IntakeService over real gRPC (SQLite and PostgreSQL), as the API tests build it.
api = intake_api.api


async def _register(api: Api, key: str, registered: datetime) -> intake_pb2.SubmitReportResponse:
    """A real-name report back-entered as registered on paper at `registered`."""
    request = intake_pb2.SubmitReportRequest(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name=f"Li Si {key}",
            post="village secretary",
            unit="Hexi village committee",
            township_id="t1",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement"],
        content=f"Subsidies paid to relatives ({key}).",
        reporter=intake_pb2.ReporterIdentity(
            full_name="Zhao Liu", id_number="110101199001011234", phone="13800000000"
        ),
        registered_at=_stamp(registered),
    )
    done: intake_pb2.SubmitReportResponse = await api.stub.SubmitReport(
        request, metadata=api.as_("intake_officer", BACK_ENTRY_ROLE)
    )
    return done


async def _conclude(api: Api, clue_id: str, at: datetime) -> None:
    """Deliver cases' closure of the clue, stepped on paper at `at`, as the consumer would."""
    event = CaseClosed(
        county_id="c1",
        zone_id="z1",
        case_id=clue_id,
        township_id="t1",
        action="close",
        from_stage="verification",
        to_stage="closed",
        actor="chief-1",
        rule_version="r1",
        occurred_at=at,
        # A closure entered from the paper ledger, as cases marks a back-entered step.
        detail={"back_entered": True},
    )
    envelope = Envelope(
        id=f"e-close-{clue_id}",
        type=event.event_type,
        source="xiezuo/cases",
        time=at,
        county_id="c1",
        zone_id="z1",
        data=b"{}",
    )
    async with api.db.transaction() as session:
        await CaseProgressHandler(VAULT, BOOK)(session, event, envelope)


async def _report(db: Database, report_id: str) -> ReportRow:
    async with db.session() as session:
        row = await session.get(ReportRow, report_id)
    assert row is not None
    return row


async def _audits(db: Database, report_id: str, action: str) -> list[AuditEntry]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditEntry)
            .where(AuditEntry.record_id == report_id, AuditEntry.action == action)
            .order_by(col(AuditEntry.id))
        )
        return list(rows.all())


async def _system_messages(db: Database, report_id: str) -> dict[str, datetime]:
    async with db.session() as session:
        rows = await session.exec(
            select(ReporterMessageRow.idempotency_key, ReporterMessageRow.sent_at).where(
                ReporterMessageRow.report_id == report_id, ReporterMessageRow.author == "system"
            )
        )
        return {key: as_utc(sent_at) for key, sent_at in rows.all()}


def _accept(report_id: str, effective_at: datetime | None = None) -> Any:
    request = intake_pb2.DecideAcceptanceRequest(
        report_id=report_id,
        outcome=intake_pb2.ACCEPTANCE_OUTCOME_ACCEPT,
        idempotency_key=f"accept-{report_id}",
    )
    if effective_at is not None:
        request.effective_at.CopyFrom(_stamp(effective_at))
    return request


def _tell(report_id: str, effective_at: datetime | None = None, key: str = "told-1") -> Any:
    request = intake_pb2.RecordResultFeedbackRequest(
        report_id=report_id, idempotency_key=key, channel_note="A warning was given."
    )
    if effective_at is not None:
        request.effective_at.CopyFrom(_stamp(effective_at))
    return request


async def _refused(call: Any, request: Any, metadata: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(request, metadata=metadata)
    return refused.value


async def test_a_back_entered_acceptance_is_dated_on_paper_and_never_breached(api: Api) -> None:
    registered = _ago(120)
    report = await _register(api, "paper-1", registered)
    decided = registered + timedelta(days=5)
    clerk = api.as_("intake_officer", BACK_ENTRY_ROLE)
    done = await api.stub.DecideAcceptance(_accept(report.report_id, decided), metadata=clerk)
    assert done.status == intake_pb2.REPORT_STATUS_ACCEPTED

    row = await _report(api.db, report.report_id)
    assert row.status == "accepted" and as_utc(row.feedback_given_at) == decided
    assert row.feedback_due_at is not None and decided <= as_utc(row.feedback_due_at)
    [(occurred_at, event)] = await _events(api.db, ACCEPTED_TYPE)
    assert occurred_at == decided and datetime.fromisoformat(event["decided_at"]) == decided
    assert (await _system_messages(api.db, report.report_id))["acceptance:accepted"] == decided
    # The audit log keeps the real time of entry and says what was back-dated.
    [audit] = await _audits(api.db, report.report_id, "report.accept")
    detail = json.loads(audit.detail)
    assert detail["back_entered"] is True
    assert datetime.fromisoformat(detail["effective_at"]) == decided
    assert as_utc(audit.at) > decided + timedelta(days=100)

    # Months later in real time, the reporter was still told within the limit.
    desk = AcceptanceDesk(api.db, VAULT)
    assert await desk.scan_feedback_deadlines(now=datetime.now(UTC)) == []
    assert await _events(api.db, BREACH_TYPE) == []

    # A retry names the same moment; another moment is another decision and is refused.
    again = await api.stub.DecideAcceptance(_accept(report.report_id, decided), metadata=clerk)
    assert again.status == intake_pb2.REPORT_STATUS_ACCEPTED
    moved = _accept(report.report_id, decided + timedelta(days=1))
    conflict = await _refused(api.stub.DecideAcceptance, moved, clerk)
    assert conflict.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert len(await _events(api.db, ACCEPTED_TYPE)) == 1
    assert as_utc((await _report(api.db, report.report_id)).feedback_given_at) == decided


async def test_a_back_entered_result_is_dated_on_paper_and_never_breached(api: Api) -> None:
    registered = _ago(150)
    report = await _register(api, "paper-2", registered)
    clerk = api.as_("intake_officer", BACK_ENTRY_ROLE)
    await api.stub.DecideAcceptance(
        _accept(report.report_id, registered + timedelta(days=2)), metadata=clerk
    )
    concluded = registered + timedelta(days=40)
    await _conclude(api, report.clue_id, concluded)
    row = await _report(api.db, report.report_id)
    assert row.status == "concluded" and as_utc(row.concluded_at) == concluded
    assert row.result_due_at is not None

    told_at = concluded + timedelta(days=5)
    told = await api.stub.RecordResultFeedback(_tell(report.report_id, told_at), metadata=clerk)
    assert told.within_limit and told.result_given_at.ToDatetime(tzinfo=UTC) == told_at
    row = await _report(api.db, report.report_id)
    assert as_utc(row.result_given_at) == told_at
    [(occurred_at, event)] = await _events(api.db, GIVEN_TYPE)
    assert occurred_at == told_at and datetime.fromisoformat(event["given_at"]) == told_at
    assert event["within_limit"] is True
    messages = await _system_messages(api.db, report.report_id)
    assert [at for key, at in messages.items() if key.startswith("result")] == [told_at]
    [audit] = await _audits(api.db, report.report_id, "report.result_told")
    detail = json.loads(audit.detail)
    assert detail["back_entered"] is True and detail["within_limit"] is True
    assert datetime.fromisoformat(detail["effective_at"]) == told_at
    assert as_utc(audit.at) > told_at + timedelta(days=100)

    results = ResultDesk(api.db, VAULT)
    assert await results.scan_result_deadlines(now=datetime.now(UTC)) == []
    assert await AcceptanceDesk(api.db, VAULT).scan_feedback_deadlines(now=datetime.now(UTC)) == []
    assert await _events(api.db, BREACH_TYPE) == []

    # The moment is part of the retry's fingerprint.
    again = await api.stub.RecordResultFeedback(_tell(report.report_id, told_at), metadata=clerk)
    assert again.result_given_at == told.result_given_at
    moved = _tell(report.report_id, told_at + timedelta(days=1))
    conflict = await _refused(api.stub.RecordResultFeedback, moved, clerk)
    assert conflict.code() is grpc.StatusCode.FAILED_PRECONDITION
    unset = await _refused(api.stub.RecordResultFeedback, _tell(report.report_id), clerk)
    assert unset.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert len(await _events(api.db, GIVEN_TYPE)) == 1


async def _assert_untouched(api: Api, report_id: str, *, status: str) -> None:
    row = await _report(api.db, report_id)
    assert row.status == status
    if status == "received":
        assert row.feedback_given_at is None
        assert await _events(api.db, ACCEPTED_TYPE) == []
        assert await _audits(api.db, report_id, "report.accept") == []
        assert "acceptance:accepted" not in await _system_messages(api.db, report_id)
    else:
        assert row.result_given_at is None
        assert await _events(api.db, GIVEN_TYPE) == []
        assert await _audits(api.db, report_id, "report.result_told") == []


async def test_back_dating_needs_the_role_and_changes_nothing_without_it(api: Api) -> None:
    registered = _ago(60)
    report = await _register(api, "paper-3", registered)
    officer = api.as_("intake_officer")
    accept = _accept(report.report_id, registered + timedelta(days=1))
    refused = await _refused(api.stub.DecideAcceptance, accept, officer)
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    # The back-entry role alone is no licence to decide.
    alone = await _refused(api.stub.DecideAcceptance, accept, api.as_(BACK_ENTRY_ROLE))
    assert alone.code() is grpc.StatusCode.PERMISSION_DENIED
    await _assert_untouched(api, report.report_id, status="received")

    await api.stub.DecideAcceptance(_accept(report.report_id), metadata=officer)
    concluded = registered + timedelta(days=10)
    await _conclude(api, report.clue_id, concluded)
    tell = _tell(report.report_id, concluded + timedelta(days=1))
    refused = await _refused(api.stub.RecordResultFeedback, tell, officer)
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    await _assert_untouched(api, report.report_id, status="concluded")


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(lambda start: start - timedelta(days=1), id="before-registration"),
        pytest.param(lambda start: datetime.now(UTC) + timedelta(days=1), id="future"),
        pytest.param(
            lambda start: datetime.now(UTC) - timedelta(days=WINDOW_DAYS + 5), id="outside-window"
        ),
    ],
)
async def test_an_impossible_decision_moment_is_refused_and_changes_nothing(
    api: Api, moment: Any
) -> None:
    registered = _ago(60)
    report = await _register(api, "paper-4", registered)
    clerk = api.as_("intake_officer", BACK_ENTRY_ROLE)
    bad = await _refused(
        api.stub.DecideAcceptance, _accept(report.report_id, moment(registered)), clerk
    )
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(bad)] == ["effective_at"]
    await _assert_untouched(api, report.report_id, status="received")

    await api.stub.DecideAcceptance(
        _accept(report.report_id, registered + timedelta(days=1)), metadata=clerk
    )
    concluded = registered + timedelta(days=10)
    await _conclude(api, report.clue_id, concluded)
    # For the result, "before" means before the handling concluded (after registration).
    start = concluded if moment(registered) < registered else registered
    bad = await _refused(
        api.stub.RecordResultFeedback, _tell(report.report_id, moment(start)), clerk
    )
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(bad)] == ["effective_at"]
    await _assert_untouched(api, report.report_id, status="concluded")


async def test_scans_give_a_back_entry_time_to_enter_its_decisions(api: Api) -> None:
    # Entered today, due on paper months ago: a scan running before the decisions are entered
    # must not judge it, and one after the grace period judges what is still missing.
    registered = _ago(120)
    report = await _register(api, "paper-grace", registered)
    acceptance, results = AcceptanceDesk(api.db, VAULT), ResultDesk(api.db, VAULT)
    assert await acceptance.scan_feedback_deadlines(now=datetime.now(UTC)) == []
    await _conclude(api, report.clue_id, registered + timedelta(days=30))
    assert await results.scan_result_deadlines(now=datetime.now(UTC)) == []
    assert await _events(api.db, BREACH_TYPE) == []

    later = datetime.now(UTC) + BACK_ENTRY_GRACE + timedelta(minutes=1)
    assert await acceptance.scan_feedback_deadlines(now=later) == [report.report_id]
    assert await results.scan_result_deadlines(now=later) == [report.report_id]
    kinds = sorted(event["kind"] for _, event in await _events(api.db, BREACH_TYPE))
    assert kinds == ["acceptance", "result"]
