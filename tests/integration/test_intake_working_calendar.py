"""Intake's working-day limits on the county's calendar, through the real store and gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlmodel import func, select
from xiezuo.intake.v1 import intake_pb2

from services.cases.domain.rules import DEFAULT_RULES
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.report import ReporterIdentity, Subject, Submission
from services.intake.store.reports import ReportRegistry
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReportRow
from services.runtime.backentry import BACK_ENTRY_ROLE
from services.runtime.db import Database, as_utc
from services.runtime.grpc.errors import field_violations
from services.working_calendar import CalendarYear, WorkingCalendar
from tests.conftest import MakeDatabase
from tests.integration import intake_api
from tests.integration.intake_api import VAULT, Api
from tests.integration.intake_api import stamp as _stamp

FRIDAY_BEFORE_SPRING_FESTIVAL = datetime(2026, 2, 13, 9, 30, tzinfo=UTC)


def _submission(key: str, received: datetime) -> Submission:
    return Submission(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=Channel.LETTER,
        subject=Subject(
            "Li Si", "village secretary", "Hexi village committee", "t1", "", CadreLevel.VILLAGE
        ),
        allegation_categories=("embezzlement",),
        content="Subsidies paid to relatives.",
        reporter=ReporterIdentity("Zhao Liu", "110101199001011234", "13800000000", ""),
        campaign_id=None,
        received_at=received,
        registered_at=received,
    )


async def _reports(db: Database) -> int:
    async with db.session() as session:
        return int((await session.exec(select(func.count()).select_from(ReportRow))).one())


async def test_intake_and_cases_put_a_spring_festival_deadline_on_the_same_day(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, VAULT, load_rule_book())
    done = await registry.register(
        _submission("sf-1", FRIDAY_BEFORE_SPRING_FESTIVAL), actor="officer"
    )
    async with db.session() as session:
        row = await session.get(ReportRow, done.report_id)
    assert row is not None and row.feedback_due_at is not None and row.forward_due_at
    # 5 working days: Sat 14 Feb (调休) and 24–27 Feb; 15: on to Thu 12 March.
    assert as_utc(row.forward_due_at) == datetime(2026, 2, 27, 9, 30, tzinfo=UTC)
    feedback_due = as_utc(row.feedback_due_at)
    assert feedback_due == datetime(2026, 3, 12, 9, 30, tzinfo=UTC)
    # Cases' letter-of-inquiry reply, also 15 working days, ends on the same day.
    assert DEFAULT_RULES.due("inquiry_reply", FRIDAY_BEFORE_SPRING_FESTIVAL) == feedback_due


async def _due_dates(
    db: Database, registry: ReportRegistry, key: str, received: datetime
) -> tuple[datetime, datetime]:
    """The stored (forward_due_at, feedback_due_at) of a real-name report received then."""
    done = await registry.register(_submission(key, received), actor="officer")
    async with db.session() as session:
        row = await session.get(ReportRow, done.report_id)
    assert row is not None and row.feedback_due_at is not None and row.forward_due_at
    return as_utc(row.forward_due_at), as_utc(row.feedback_due_at)


async def test_limits_count_from_the_countys_date_and_are_stored_in_utc(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    registry = ReportRegistry(db, VAULT, load_rule_book())
    # Received Monday 2 March 2026 at 07:30 Beijing time: Sunday 23:30 in UTC. Counted from
    # Monday: forwarding (5) Monday 9 March, feedback (15) Monday 23 March, both 07:30 Beijing.
    # (From the UTC Sunday both fell on a Saturday.)
    monday = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    forward_due, feedback_due = await _due_dates(db, registry, "mon-0730", monday)
    assert forward_due == datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    assert feedback_due == datetime(2026, 3, 22, 23, 30, tzinfo=UTC)
    # Cases counts its 15-working-day inquiry reply from the same local day.
    assert DEFAULT_RULES.due("inquiry_reply", monday) == feedback_due
    # Saturday 14 Feb 07:30 Beijing time, an adjusted working day (Friday 23:30 UTC): day 0 is
    # the Saturday; forwarding Sat 28 Feb (worked), feedback Fri 13 March, 07:30 Beijing.
    saturday = datetime(2026, 2, 13, 23, 30, tzinfo=UTC)
    assert await _due_dates(db, registry, "sat-0730", saturday) == (
        datetime(2026, 2, 27, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 12, 23, 30, tzinfo=UTC),
    )
    assert DEFAULT_RULES.due("inquiry_reply", saturday) == datetime(2026, 3, 12, 23, 30, tzinfo=UTC)
    # Friday 13 Feb 23:30 Beijing time (15:30 UTC) is still Friday there: Fri 27 Feb, Thu 12 March.
    friday = datetime(2026, 2, 13, 15, 30, tzinfo=UTC)
    assert await _due_dates(db, registry, "fri-2330", friday) == (
        datetime(2026, 2, 27, 15, 30, tzinfo=UTC),
        datetime(2026, 3, 12, 15, 30, tzinfo=UTC),
    )


# Last year, and a calendar that lists it alone (weekends only): next year is unknown to it.
LAST_YEAR = datetime.now(UTC).year - 1
LAST_YEAR_ONLY = WorkingCalendar("last-year-only", {LAST_YEAR: CalendarYear(LAST_YEAR, "test")})


@pytest.fixture
async def api(make_database: MakeDatabase) -> AsyncIterator[Api]:
    """Intake under a calendar that lists last year only."""
    book = replace(load_rule_book(), calendar=LAST_YEAR_ONLY)
    async with intake_api.serve(await make_database("intake"), book) as running:
        yield running


async def test_a_limit_past_the_calendar_is_refused_and_stores_nothing(api: Api) -> None:
    # 24 December of last year (inside the back-entry window) + 15 working days: next year.
    received = datetime(LAST_YEAR, 12, 24, 9, tzinfo=UTC)
    assert received > datetime.now(UTC) - timedelta(days=intake_api.WINDOW_DAYS)
    request = intake_pb2.SubmitReportRequest(
        idempotency_key="late-1",
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
        reporter=intake_pb2.ReporterIdentity(
            full_name="Zhao Liu", id_number="110101199001011234", phone="13800000000"
        ),
        registered_at=_stamp(received),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.SubmitReport(request, metadata=api.as_("intake_officer", BACK_ENTRY_ROLE))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [(field, reason)] = field_violations(refused.value)
    assert field == "registered_at" and f"{LAST_YEAR + 1}-01-" in reason
    assert await _reports(api.db) == 0
