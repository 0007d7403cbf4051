"""Back-entry (补录) of a report's registration time over real gRPC on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlmodel import func, select
from xiezuo.intake.v1 import intake_pb2

from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import Subject, Submission
from services.intake.store.reports import ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ClueLedgerRow, ReportRow
from services.runtime.audit import AuditEntry
from services.runtime.backentry import BACK_ENTRY_ROLE
from services.runtime.db import Database
from services.runtime.grpc.errors import field_violations
from tests.integration import intake_api
from tests.integration.intake_api import VAULT, WINDOW_DAYS, Api
from tests.integration.intake_api import ago as _ago
from tests.integration.intake_api import events as _events
from tests.integration.intake_api import stamp as _stamp

CLUE_TYPE = "xiezuo.intake.clue_registered.v1"
LINKED_TYPE = "xiezuo.intake.report_linked.v1"
BOOK = load_rule_book()

# The IntakeService over real gRPC (SQLite and PostgreSQL), as the API tests build it.
api = intake_api.api


def _request(key: str, **fields: Any) -> intake_pb2.SubmitReportRequest:
    return intake_pb2.SubmitReportRequest(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name="Li Si",
            post="village secretary",
            unit="Hexi village committee",
            township_id="t1",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement"],
        content="Subsidies paid to relatives.",
        **fields,
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _reports(db: Database) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(ReportRow))).one())


async def test_a_back_entered_report_registers_its_clue_at_the_paper_moment(api: Api) -> None:
    registered, received = _ago(90), _ago(92)
    clerk = api.as_("intake_officer", BACK_ENTRY_ROLE)
    request = _request("paper-1", received_at=_stamp(received), registered_at=_stamp(registered))
    first = await api.stub.SubmitReport(request, metadata=clerk)
    assert first.registered_at.ToDatetime(tzinfo=UTC) == registered

    async with api.db.session() as session:
        row = await session.get(ReportRow, first.report_id)
        clue = await session.get(ClueLedgerRow, first.clue_id)
        audits = (
            await session.exec(select(AuditEntry).where(AuditEntry.record_id == first.report_id))
        ).all()
    assert row is not None and clue is not None
    assert _aware(row.registered_at) == registered and _aware(row.received_at) == received
    assert _aware(clue.registered_at) == registered
    [(occurred_at, event)] = await _events(api.db, CLUE_TYPE)
    assert occurred_at == registered
    assert datetime.fromisoformat(event["registered_at"]) == registered
    assert datetime.fromisoformat(event["received_at"]) == received
    assert event["back_entered"] is True
    # The audit log keeps the real time of entry and says what was back-dated.
    [audit] = audits
    detail = json.loads(audit.detail)
    assert detail["back_entered"] is True
    assert datetime.fromisoformat(detail["registered_at"]) == registered
    assert _aware(audit.at) > registered

    # A retry with the same key and moment is the same report; another moment reuses the key.
    again = await api.stub.SubmitReport(request, metadata=clerk)
    assert (again.report_id, again.clue_id) == (first.report_id, first.clue_id)
    assert again.registered_at == first.registered_at
    moved = _request("paper-1", received_at=_stamp(received), registered_at=_stamp(_ago(80)))
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await api.stub.SubmitReport(moved, metadata=clerk)
    assert reused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert await _reports(api.db) == 1


async def test_without_a_received_time_the_registration_moment_stands_for_both(
    api: Api,
) -> None:
    registered = _ago(30)
    clerk = api.as_("intake_officer", BACK_ENTRY_ROLE)
    done = await api.stub.SubmitReport(
        _request("paper-2", registered_at=_stamp(registered)), metadata=clerk
    )
    async with api.db.session() as session:
        row = await session.get(ReportRow, done.report_id)
    assert row is not None
    assert _aware(row.received_at) == _aware(row.registered_at) == registered
    [(_, event)] = await _events(api.db, CLUE_TYPE)
    assert datetime.fromisoformat(event["received_at"]) == registered


async def test_back_entry_needs_the_role_and_stores_nothing_without_it(api: Api) -> None:
    request = _request("paper-3", registered_at=_stamp(_ago(10)))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.SubmitReport(request, metadata=api.as_("intake_officer"))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    # The back-entry role alone is no licence to submit.
    with pytest.raises(grpc.aio.AioRpcError) as alone:
        await api.stub.SubmitReport(request, metadata=api.as_(BACK_ENTRY_ROLE))
    assert alone.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert await _reports(api.db) == 0
    assert await _events(api.db, CLUE_TYPE) == []


@pytest.mark.parametrize(
    ("received_days_ago", "registered_days_ago"),
    [
        pytest.param(None, -1, id="future"),
        pytest.param(10, 20, id="before-received"),
        pytest.param(None, WINDOW_DAYS + 5, id="outside-window"),
    ],
)
async def test_an_impossible_registration_moment_is_refused_and_stores_nothing(
    api: Api, received_days_ago: int | None, registered_days_ago: int
) -> None:
    fields: dict[str, Any] = {"registered_at": _stamp(_ago(registered_days_ago))}
    if received_days_ago is not None:
        fields["received_at"] = _stamp(_ago(received_days_ago))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.SubmitReport(
            _request("paper-4", **fields), metadata=api.as_("intake_officer", BACK_ENTRY_ROLE)
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["registered_at"]
    assert await _reports(api.db) == 0
    assert await _events(api.db, CLUE_TYPE) == []


async def test_a_back_entered_repeat_joins_the_clue_at_its_paper_moment(api: Api) -> None:
    registry = ReportRegistry(api.db, VAULT, BOOK)
    received = _ago(60)
    first = Submission(
        idempotency_key="paper-5",
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=Channel.LETTER,
        subject=Subject(
            "Li Si", "village secretary", "Hexi village committee", "t1", "", CadreLevel.VILLAGE
        ),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=None,
        campaign_id=None,
        received_at=received,
        registered_at=received,
    )
    opened = await registry.register(first, actor="officer")
    repeat_at = _ago(58)
    repeat = replace(
        first, idempotency_key="paper-6", received_at=repeat_at, registered_at=repeat_at
    )
    joined = await registry.register(repeat, actor="officer")
    assert joined.linked and joined.clue_id == opened.clue_id
    assert joined.registered_at == repeat_at
    async with api.db.session() as session:
        row = await session.get(ReportRow, joined.report_id)
    assert row is not None and row.linked_at is not None
    assert _aware(row.registered_at) == _aware(row.linked_at) == repeat_at
    [(occurred_at, event)] = await _events(api.db, LINKED_TYPE)
    assert occurred_at == repeat_at
    assert datetime.fromisoformat(event["linked_at"]) == repeat_at
