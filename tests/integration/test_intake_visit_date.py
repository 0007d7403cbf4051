"""A visit's date is judged on the county's clock, not UTC's, through the real gRPC service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from xiezuo.intake.v1 import intake_pb2

from services.intake.store.rule_files import load_rule_book
from services.runtime.grpc.errors import field_violations
from tests.conftest import MakeDatabase
from tests.integration import intake_api
from tests.integration.intake_api import Api

# 07:30 on Tuesday 10 March 2026 in Beijing; the UTC date is still the 9th.
EARLY_MORNING_IN_BEIJING = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)


@pytest.fixture
async def api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    """The service under the shipped rule book, its clock stopped at 07:30 Beijing time."""
    book = load_rule_book()
    database = await make_database("intake")
    async with intake_api.serve(database, book, clock=lambda: EARLY_MORNING_IN_BEIJING) as running:
        yield running


def _visit(key: str, visit_date: str) -> intake_pb2.SubmitReportRequest:
    return intake_pb2.SubmitReportRequest(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=intake_pb2.REPORT_CHANNEL_VISIT,
        subject=intake_pb2.ReportedSubject(
            name="Li Si",
            post="village secretary",
            unit="Hexi village committee",
            township_id="t1",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["embezzlement"],
        content="Subsidies paid to relatives.",
        visit=intake_pb2.VisitDetails(visit_date=visit_date, receiving_officer_id="officer-7"),
    )


async def test_a_visit_dated_today_in_beijing_is_accepted_before_eight(api: Api) -> None:
    done = await api.stub.SubmitReport(
        _visit("visit-today", "2026-03-10"), metadata=api.as_("intake_officer")
    )
    assert done.report_id


async def test_a_visit_dated_tomorrow_in_beijing_is_refused(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.SubmitReport(
            _visit("visit-tomorrow", "2026-03-11"), metadata=api.as_("intake_officer")
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == [("visit.visit_date", "must not be in the future")]
