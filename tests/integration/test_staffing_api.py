"""StaffingService over real gRPC on SQLite and PostgreSQL: explain, replay, decline, override."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from sqlmodel import col
from xiezuo.staffing.v1 import staffing_pb2

from services.contracts.staffing import DrawOverridden, RecusalRecorded, TeamAssigned
from services.runtime.messaging_tables import OutboxMessage
from services.staffing.domain.draw import DrawRequest, Stage
from services.staffing.store.tables import AssignmentRow
from tests.integration import staffing_api
from tests.integration.helpers import count_rows
from tests.integration.staffing_api import DrawingApi as Api

api = staffing_api.staffing_api


async def _draw(api: Api, database: Any, team_size: int = 2) -> str:
    request = DrawRequest(
        request_id="req-1",
        case_id="case-1",
        county_id="c-api",
        zone_id="z-1",
        stage=Stage.INVESTIGATION,
        subject_township_id="t-1",
        subject_key="subj",
        team_size=team_size,
        on_date=datetime.now(UTC).date(),
    )
    async with database.transaction() as session:
        record = await api.drawer.draw(session, request, round_=0, cause="requested", actor="t")
    return record.draw_id


async def test_explain_and_replay_a_draw(api: tuple[Api, Any]) -> None:
    client, database = api
    draw_id = await _draw(client, database)
    explained = await client.stub.ExplainDraw(
        staffing_pb2.ExplainDrawRequest(draw_id=draw_id), metadata=client.as_("chief", "zone_chief")
    )
    assert len(explained.draw.member_person_ids) == 2
    assert explained.draw.seed and explained.draw.algorithm_version
    assert [s.name for s in explained.draw.stages][:3] == [
        "registered",
        "not_in_pool",
        "subject_township",
    ]
    replayed = await client.stub.ReplayDraw(
        staffing_pb2.ReplayDrawRequest(draw_id=draw_id),
        metadata=client.as_("head", "commission_head"),
    )
    assert replayed.matches and replayed.seed_genuine and replayed.hash_intact
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await client.stub.ExplainDraw(
            staffing_pb2.ExplainDrawRequest(draw_id=draw_id),
            metadata=client.as_("p-2a", "township_member"),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_decline_redraws_and_override_is_recorded(api: tuple[Api, Any]) -> None:
    client, database = api
    draw_id = await _draw(client, database)
    explained = await client.stub.ExplainDraw(
        staffing_pb2.ExplainDrawRequest(draw_id=draw_id), metadata=client.as_("chief", "zone_chief")
    )
    leader, other = explained.draw.member_person_ids
    await client.stub.AcceptAssignment(
        staffing_pb2.AcceptAssignmentRequest(idempotency_key="a", draw_id=draw_id),
        metadata=client.as_(leader, "township_member"),
    )
    declined = await client.stub.DeclineAssignment(
        staffing_pb2.DeclineAssignmentRequest(idempotency_key="d", draw_id=draw_id, reason="ill"),
        metadata=client.as_(other, "township_member"),
    )
    redraw = await client.stub.ExplainDraw(
        staffing_pb2.ExplainDrawRequest(draw_id=declined.redraw_id),
        metadata=client.as_("chief", "zone_chief"),
    )
    assert redraw.draw.cause == "declined" and redraw.draw.round == 1
    [replacement] = redraw.draw.member_person_ids
    assert replacement not in (leader, other)
    excluded = {e.person_id: e.reason for e in redraw.draw.exclusions}
    assert excluded[other] == "excluded_by_request" and excluded[leader] == "excluded_by_request"

    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await client.stub.OverrideDraw(
            staffing_pb2.OverrideDrawRequest(
                idempotency_key="o", draw_id=draw_id, member_person_ids=["p-2a"], reason=" "
            ),
            metadata=client.as_("chief", "zone_chief"),
        )
    assert no_reason.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    override = await client.stub.OverrideDraw(
        staffing_pb2.OverrideDrawRequest(
            idempotency_key="o",
            draw_id=draw_id,
            member_person_ids=["p-3a", "p-3b"],
            reason="engineering case needs the t-3 pair",
        ),
        metadata=client.as_("chief", "zone_chief"),
    )
    open_rows = await count_rows(
        database,
        AssignmentRow,
        col(AssignmentRow.request_id) == "req-1",
        col(AssignmentRow.state).in_(["drawn", "accepted"]),
    )
    assert open_rows == 2
    assert (
        await count_rows(
            database, OutboxMessage, col(OutboxMessage.event_type) == DrawOverridden.event_type
        )
        == 1
    )
    assert (
        await count_rows(
            database, OutboxMessage, col(OutboxMessage.event_type) == TeamAssigned.event_type
        )
        == 3
    )
    assert override.override_id


async def test_people_recusal_and_informant_privacy(api: tuple[Api, Any]) -> None:
    client, database = api
    chief = client.as_("chief", "zone_chief")
    listed = await client.stub.ListPeople(
        staffing_pb2.ListPeopleRequest(county_id="c-api", zone_id="z-1", page_size=2),
        metadata=chief,
    )
    ids = [p.person_id for p in listed.people]
    while listed.next_page_token:
        listed = await client.stub.ListPeople(
            staffing_pb2.ListPeopleRequest(
                county_id="c-api", zone_id="z-1", page_size=2, page_token=listed.next_page_token
            ),
            metadata=chief,
        )
        ids += [p.person_id for p in listed.people]
    assert ids == ["p-2a", "p-2b", "p-3a", "p-3b"]
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await client.stub.GetPerson(staffing_pb2.GetPersonRequest(person_id="inf"), metadata=chief)
    assert hidden.value.code() is grpc.StatusCode.NOT_FOUND
    seen = await client.stub.GetPerson(
        staffing_pb2.GetPersonRequest(person_id="inf"),
        metadata=client.as_("intake", "intake_officer"),
    )
    assert seen.person.village_id == "v-1"
    own = await client.stub.GetPerson(
        staffing_pb2.GetPersonRequest(person_id="p-2a"),
        metadata=client.as_("p-2a", "township_member"),
    )
    assert own.person.home_township_id == "t-2"

    requested = await client.stub.RequestRecusal(
        staffing_pb2.RequestRecusalRequest(
            idempotency_key="r",
            county_id="c-api",
            zone_id="z-1",
            case_id="case-9",
            person_id="p-2a",
            ground=staffing_pb2.CONFLICT_RELATION_WITNESS,
            raised_by=staffing_pb2.RECUSAL_RAISED_BY_STAFF_MEMBER,
        ),
        metadata=client.as_("p-2a", "township_member"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_head:
        await client.stub.DecideRecusal(
            staffing_pb2.DecideRecusalRequest(
                idempotency_key="x", recusal_id=requested.recusal_id, granted=True
            ),
            metadata=chief,
        )
    assert not_head.value.code() is grpc.StatusCode.PERMISSION_DENIED
    decided = await client.stub.DecideRecusal(
        staffing_pb2.DecideRecusalRequest(
            idempotency_key="x", recusal_id=requested.recusal_id, granted=True
        ),
        metadata=client.as_("head", "commission_head"),
    )
    assert decided.state == "granted"
    assert (
        await count_rows(
            database, OutboxMessage, col(OutboxMessage.event_type) == RecusalRecorded.event_type
        )
        == 1
    )
    conflict = await client.stub.DeclareConflict(
        staffing_pb2.DeclareConflictRequest(
            idempotency_key="c",
            county_id="c-api",
            person_id="p-2b",
            party_key="subj",
            relation=staffing_pb2.CONFLICT_RELATION_CLOSE_RELATIVE_OF_SUBJECT,
            valid_from="2026-01-01",
        ),
        metadata=client.as_("p-2b", "township_member"),
    )
    assert conflict.conflict_id
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await client.stub.DeclareConflict(
            staffing_pb2.DeclareConflictRequest(idempotency_key="c2", county_id="c-api"),
            metadata=chief,
        )
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
