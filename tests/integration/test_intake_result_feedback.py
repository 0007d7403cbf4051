"""Result feedback after closure (实名举报) on real SQLite and PostgreSQL: due date, RPC, scan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlmodel import col, select
from xiezuo.intake.v1 import intake_pb2

from services.contracts.cases import CaseClosed, CaseDecided, CaseStepRecorded
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import ReporterIdentity, Subject, Submission
from services.intake.handlers.case_progress import CaseProgressHandler
from services.intake.store.acceptance import AcceptanceDesk
from services.intake.store.exchange import ReporterChannel
from services.intake.store.reports import Registration, ReportRegistry
from services.intake.store.result_feedback import NotConcluded, ResultDesk
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReportRow
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.envelope import Envelope
from services.runtime.grpc.errors import field_violations
from services.runtime.messaging_tables import OutboxMessage
from services.working_calendar import NATIONAL_CALENDAR
from tests.conftest import MakeDatabase
from tests.integration import intake_api
from tests.integration.intake_api import VAULT, Api

BREACH_TYPE = "xiezuo.intake.feedback_deadline_breached.v1"
GIVEN_TYPE = "xiezuo.intake.result_feedback_given.v1"
# A Tuesday holiday in the weeks after closure: the limit must step over it.
HOLIDAY = date(2025, 3, 11)
_LOADED = load_rule_book()
_YEAR = NATIONAL_CALENDAR.years[HOLIDAY.year]
BOOK = replace(
    _LOADED,
    calendar=replace(
        NATIONAL_CALENDAR,
        years={
            **NATIONAL_CALENDAR.years,
            HOLIDAY.year: replace(_YEAR, holidays=_YEAR.holidays | {HOLIDAY}),
        },
    ),
)
RECEIVED = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
CLOSED = datetime(2025, 3, 7, 10, 0, tzinfo=UTC)  # a Friday
# 15 working days after Friday 7 March: weekends and the 11 March holiday do not count.
DUE = datetime(2025, 3, 31, 10, 0, tzinfo=UTC)
IDENTITY = ReporterIdentity("Zhao Liu", "110101199001011234", "13800000000", "")


def _submission(key: str, *, real_name: bool, days: int, name: str) -> Submission:
    return Submission(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=Channel.LETTER,
        subject=Subject(
            name, "village secretary", "Hexi village committee", "t1", "", CadreLevel.VILLAGE
        ),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=IDENTITY if real_name else None,
        campaign_id=None,
        received_at=RECEIVED + timedelta(days=days),
    )


async def _register(
    db: Database, key: str, *, real_name: bool = True, days: int = 0, name: str = "Li Si"
) -> str:
    registration: Registration = await ReportRegistry(db, VAULT, BOOK).register(
        _submission(key, real_name=real_name, days=days, name=name), actor="officer"
    )
    return registration.report_id


async def _report(db: Database, report_id: str) -> ReportRow:
    async with db.session() as session:
        row = await session.get(ReportRow, report_id)
    assert row is not None
    return row


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


async def _step(db: Database, event: CaseStepRecorded) -> None:
    """Deliver a workflow step to intake's handler as the consumer would."""
    envelope = Envelope(
        id=f"e-{event.event_type}-{event.occurred_at.isoformat()}",
        type=event.event_type,
        source="xiezuo/cases",
        time=event.occurred_at,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=b"{}",
    )
    async with db.transaction() as session:
        await CaseProgressHandler(VAULT, BOOK)(session, event, envelope)


def _closed(clue_id: str, at: datetime, kind: type[CaseStepRecorded] = CaseClosed) -> Any:
    return kind(
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
    )


async def _events(db: Database, event_type: str) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.payload).where(OutboxMessage.event_type == event_type)
        )
        return [json.loads(payload) for payload in rows.all()]


async def _conclude(db: Database) -> tuple[str, str]:
    """A real-name report and an anonymous repeat of it, on one clue that is then closed."""
    named = await _register(db, "named")
    anonymous = await _register(db, "anonymous", real_name=False, days=1)
    clue_id = (await _report(db, named)).clue_id
    assert (await _report(db, anonymous)).clue_id == clue_id
    await _step(db, _closed(clue_id, CLOSED))
    return named, anonymous


async def test_closure_sets_the_result_due_date_for_real_name_reports_only(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    named, anonymous = await _conclude(db)
    row = await _report(db, named)
    assert row.status == "concluded" and _aware(row.result_due_at) == DUE
    assert (await _report(db, anonymous)).result_due_at is None
    # Redelivered, or a second concluding step later (decided, then closed): the limit stays.
    await _step(db, _closed(row.clue_id, CLOSED))
    await _step(db, _closed(row.clue_id, CLOSED + timedelta(days=9), CaseDecided))
    assert _aware((await _report(db, named)).result_due_at) == DUE


async def test_the_result_limit_counts_from_the_countys_date_of_closure(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    named = await _register(db, "early-close")
    clue_id = (await _report(db, named)).clue_id
    # Closed Monday 12 May 2025 at 07:30 Beijing time, still Sunday 11 May in UTC.
    await _step(db, _closed(clue_id, datetime(2025, 5, 11, 23, 30, tzinfo=UTC)))
    # 15 working days from Monday 12 May, 31 May–2 June (端午) off: Tuesday 3 June, 07:30
    # Beijing time. (Counted from the UTC Sunday it was Friday 30 May 23:30 UTC.)
    due = _aware((await _report(db, named)).result_due_at)
    assert due == datetime(2025, 6, 2, 23, 30, tzinfo=UTC)


async def test_without_the_result_the_scan_breaches_once_with_kind_result(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    named, _ = await _conclude(db)
    desk = ResultDesk(db, VAULT)
    assert await desk.scan_result_deadlines(now=DUE) == []
    assert await desk.scan_result_deadlines(now=DUE + timedelta(seconds=1)) == [named]
    assert await desk.scan_result_deadlines(now=DUE + timedelta(days=1)) == []
    breaches = await _events(db, BREACH_TYPE)
    assert [(b["report_id"], b["kind"]) for b in breaches] == [(named, "result")]
    assert breaches[0]["due_at"].startswith("2025-03-31T10:00:00")
    # The acceptance scan is a separate limit and does not report result breaches.
    acceptance = AcceptanceDesk(db, VAULT)
    await acceptance.scan_feedback_deadlines(now=DUE + timedelta(days=2))
    kinds = sorted(b["kind"] for b in await _events(db, BREACH_TYPE))
    assert kinds.count("result") == 1


async def test_told_result_is_recorded_once_and_then_nothing_is_breached(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    early = await _register(db, "early", name="Sun Qi")
    desk = ResultDesk(db, VAULT)
    with pytest.raises(NotConcluded):
        await desk.record(early, note="n", idempotency_key="r0", actor="o", now=CLOSED)
    named, _ = await _conclude(db)
    told_at = DUE - timedelta(days=1)
    told = await desk.record(
        named, note="A warning was given.", idempotency_key="r1", actor="o", now=told_at
    )
    assert told.within_limit and told.given_at == told_at
    again = await desk.record(named, note="x", idempotency_key="r1", actor="o", now=DUE)
    assert again.given_at == told_at
    assert await desk.scan_result_deadlines(now=DUE + timedelta(days=5)) == []
    assert await _events(db, BREACH_TYPE) == []
    given = await _events(db, GIVEN_TYPE)
    assert len(given) == 1 and given[0]["within_limit"] is True
    assert "Zhao" not in json.dumps(given) and "warning" not in json.dumps(given)
    messages = await ReporterChannel(db, VAULT).read(
        await _report(db, named), after_seq=0, limit=50, actor="o", now=DUE
    )
    told_bodies = [m.body for m in messages if "result" in m.body]
    assert told_bodies == ["The result of the handling of your report: A warning was given."]


async def test_the_longest_allowed_key_is_recorded_and_retried(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    named, _ = await _conclude(db)
    desk = ResultDesk(db, VAULT)
    key = "k" * 128  # the API's limit; with its prefix it would overflow the message key
    told = await desk.record(named, note="n", idempotency_key=key, actor="o", now=DUE)
    again = await desk.record(named, note="n", idempotency_key=key, actor="o", now=DUE)
    assert again.given_at == told.given_at and len(await _events(db, GIVEN_TYPE)) == 1


@pytest.fixture
async def api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    """The service under the rule book with the holiday."""
    async with intake_api.serve(await make_database("intake"), BOOK) as running:
        yield running


def _call(report_id: str, key: str = "t1", note: str = "The case was closed.") -> Any:
    return intake_pb2.RecordResultFeedbackRequest(
        idempotency_key=key, report_id=report_id, channel_note=note
    )


async def _code(api: Api, request: Any, metadata: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.RecordResultFeedback(request, metadata=metadata)
    code: grpc.StatusCode = refused.value.code()
    return code


async def test_record_result_feedback_over_grpc(api: Api) -> None:
    db = api.db
    officer = api.as_("intake_officer")
    pending = await _register(db, "pending", name="Sun Qi")
    assert await _code(api, _call(pending), officer) is grpc.StatusCode.FAILED_PRECONDITION
    named, _ = await _conclude(db)

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.stub.RecordResultFeedback(
            intake_pb2.RecordResultFeedbackRequest(report_id=named), metadata=officer
        )
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(f for f, _ in field_violations(bad.value)) == [
        "channel_note",
        "idempotency_key",
    ]
    wrong_role = api.as_("case_officer")
    assert await _code(api, _call(named), wrong_role) is grpc.StatusCode.PERMISSION_DENIED
    other_county = api.as_("intake_officer", county_id="c2")
    assert await _code(api, _call(named), other_county) is grpc.StatusCode.NOT_FOUND
    other_zone = api.as_("zone_chief", zone_id="z2")
    assert await _code(api, _call(named), other_zone) is grpc.StatusCode.PERMISSION_DENIED
    assert await _events(db, GIVEN_TYPE) == []
    assert (await _report(db, named)).result_given_at is None

    first = await api.stub.RecordResultFeedback(_call(named), metadata=officer)
    # Closed in March 2025: told now, the limit has long passed.
    assert not first.within_limit
    again = await api.stub.RecordResultFeedback(_call(named), metadata=officer)
    assert again.result_given_at == first.result_given_at
    another_key = _call(named, key="t2")
    assert await _code(api, another_key, officer) is grpc.StatusCode.FAILED_PRECONDITION
    assert len(await _events(db, GIVEN_TYPE)) == 1
    async with db.session() as session:
        actions = (
            await session.exec(
                select(AuditEntry.action)
                .where(AuditEntry.record_id == named)
                .order_by(col(AuditEntry.id))
            )
        ).all()
    assert actions.count("report.result_told") == 1
    assert await ResultDesk(db, VAULT).scan_result_deadlines(now=datetime.now(UTC)) == []
