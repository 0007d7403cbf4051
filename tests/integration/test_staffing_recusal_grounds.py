"""Recusal grounds as rule data: RequestRecusal takes a ground code checked against them."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlmodel import select
from xiezuo.staffing.v1 import staffing_pb2

from services.runtime.grpc.errors import field_violations
from services.staffing.store.tables import RecusalRow
from tests.integration import staffing_api
from tests.integration.staffing_api import DrawingApi as Api

api = staffing_api.staffing_api


def _request(key: str, **ground: Any) -> staffing_pb2.RequestRecusalRequest:
    return staffing_pb2.RequestRecusalRequest(
        idempotency_key=key,
        county_id="c-api",
        zone_id="z-1",
        case_id="case-9",
        person_id="p-2a",
        raised_by=staffing_pb2.RECUSAL_RAISED_BY_STAFF_MEMBER,
        **ground,
    )


async def _grounds(database: Any) -> list[str]:
    async with database.session() as session:
        rows = (await session.exec(select(RecusalRow))).all()
    return sorted(row.ground for row in rows)


async def test_a_ground_is_named_by_its_code_or_by_the_deprecated_enum(
    api: tuple[Api, Any],
) -> None:
    client, database = api
    staff = client.as_("p-2a", "township_member")
    await client.stub.RequestRecusal(
        _request("by-code", recusal_ground_code="interest_in_matter"), metadata=staff
    )
    # An older client still sends the enum: stored as the same code a new client would send.
    await client.stub.RequestRecusal(
        _request("by-enum", ground=staffing_pb2.CONFLICT_RELATION_WITNESS), metadata=staff
    )
    await client.stub.RequestRecusal(
        _request(
            "both",
            ground=staffing_pb2.CONFLICT_RELATION_CLOSE_RELATIVE_OF_SUBJECT,
            recusal_ground_code="close_relative_of_subject",
        ),
        metadata=staff,
    )
    assert await _grounds(database) == [
        "close_relative_of_subject",
        "interest_in_matter",
        "witness",
    ]


@pytest.mark.parametrize(
    ("ground", "field", "reason"),
    [
        ({"recusal_ground_code": "owes_money"}, "recusal_ground_code", "is not a recusal ground"),
        (
            {
                "recusal_ground_code": "witness",
                "ground": staffing_pb2.CONFLICT_RELATION_OTHER,
            },
            "recusal_ground_code",
            "but ground names 'other'",
        ),
        ({}, "recusal_ground_code", "must be set"),
    ],
)
async def test_an_unknown_or_contradictory_ground_is_refused_and_stores_nothing(
    api: tuple[Api, Any], ground: dict[str, Any], field: str, reason: str
) -> None:
    client, database = api
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.stub.RequestRecusal(
            _request("bad", **ground), metadata=client.as_("p-2a", "township_member")
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [(named, why)] = field_violations(refused.value)
    assert named == field and reason in why
    assert await _grounds(database) == []
