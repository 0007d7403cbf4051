"""People carry the open assignments they hold beside their workload cap (the zone board)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from xiezuo.staffing.v1 import staffing_pb2

from services.staffing.domain.draw import DrawRequest, Stage
from tests.integration import staffing_api
from tests.integration.staffing_api import DrawingApi as Api

api = staffing_api.staffing_api


async def test_a_drawn_person_holds_one_open_assignment_and_others_none(
    api: tuple[Api, Any],
) -> None:
    client, database = api
    request = DrawRequest(
        request_id="req-load",
        case_id="case-load",
        county_id="c-api",
        zone_id="z-1",
        stage=Stage.INVESTIGATION,
        subject_township_id="t-1",
        subject_key="subj",
        team_size=2,
        on_date=datetime.now(UTC).date(),
    )
    async with database.transaction() as session:
        record = await client.drawer.draw(session, request, round_=0, cause="requested", actor="t")
    chief = client.as_("chief", "zone_chief")
    explained = await client.stub.ExplainDraw(
        staffing_pb2.ExplainDrawRequest(draw_id=record.draw_id), metadata=chief
    )
    drawn = set(explained.draw.member_person_ids)
    assert len(drawn) == 2

    people: list[staffing_pb2.Person] = []
    token = ""
    while True:
        page = await client.stub.ListPeople(
            staffing_pb2.ListPeopleRequest(county_id="c-api", zone_id="z-1", page_token=token),
            metadata=chief,
        )
        people.extend(page.people)
        token = page.next_page_token
        if not token:
            break
    load = {person.person_id: person.open_assignments for person in people}
    assert {person for person, held in load.items() if held} == drawn
    assert all(load[person] == 1 for person in drawn)

    one = await client.stub.GetPerson(
        staffing_pb2.GetPersonRequest(person_id=sorted(drawn)[0]), metadata=chief
    )
    assert one.person.open_assignments == 1
