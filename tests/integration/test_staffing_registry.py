"""Registry maintenance over real gRPC (SQLite, PostgreSQL): create, update, history, placing."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from sqlmodel import select
from xiezuo.staffing.v1 import registry_pb2, staffing_pb2

from services.contracts.staffing import TownshipPlaced, UnitNamed
from services.runtime.db import Database
from services.runtime.messaging_tables import OutboxMessage
from services.staffing.store.registry import get_person
from tests.integration import staffing_api
from tests.integration.staffing_api import Api

api = staffing_api.registry_api


def new_member(key: str = "c-1") -> registry_pb2.CreatePersonRequest:
    """A township member of t-1 (zone z-1)."""
    return registry_pb2.CreatePersonRequest(
        idempotency_key=key,
        county_id="c-rg",
        person_id="p-new",
        name="新人",
        roles=["township_member"],
        home_township_id="t-1",
        skills=["law"],
        workload_cap=3,
    )


async def placed_events(database: Database) -> list[dict[str, Any]]:
    """TownshipPlaced payloads in the outbox."""
    async with database.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.event_type == TownshipPlaced.event_type)
            )
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_a_person_is_created_once_updated_and_every_change_is_in_history(api: Api) -> None:
    chief = api.as_("chief", "zone_chief")
    created = await api.stub.CreatePerson(new_member(), metadata=chief)
    again = await api.stub.CreatePerson(new_member(), metadata=chief)
    assert created.person == again.person
    assert created.person.zone_id == "z-1"

    update = registry_pb2.UpdatePersonRequest(
        idempotency_key="u-1",
        person_id="p-new",
        name="新人",
        roles=["township_member"],
        home_township_id="t-1",
        skills=["law"],
        workload_cap=5,
        statuses=[staffing_pb2.StatusPeriod(status="on_leave", start_date="2026-04-01")],
    )
    updated = await api.stub.UpdatePerson(update, metadata=chief)
    assert list(updated.changed_fields) == ["statuses", "workload_cap"]
    repeated = await api.stub.UpdatePerson(update, metadata=chief)
    assert list(repeated.changed_fields) == ["statuses", "workload_cap"]

    changes = await api.stub.ListRegistryChanges(
        registry_pb2.ListRegistryChangesRequest(
            record_type="person", record_id="p-new", page_size=1
        ),
        metadata=chief,
    )
    rest = await api.stub.ListRegistryChanges(
        registry_pb2.ListRegistryChangesRequest(
            record_type="person", record_id="p-new", page_size=1, page_token=changes.next_page_token
        ),
        metadata=chief,
    )
    history = [*changes.changes, *rest.changes]
    assert [c.action for c in history] == ["created", "updated"]
    assert all(c.changed_by == "chief" for c in history)
    assert json.loads(history[1].before_json)["workload_cap"] == 3
    assert json.loads(history[1].after_json)["workload_cap"] == 5


async def test_bad_or_unauthorised_edits_store_nothing(api: Api) -> None:
    bad = registry_pb2.CreatePersonRequest(
        idempotency_key="k",
        county_id="c-rg",
        person_id="bad id!",
        name=" ",
        roles=["wizard"],
        workload_cap=99,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.CreatePerson(bad, metadata=api.as_("head", "county_leadership"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for field in ("person_id", "name", "roles[0]", "workload_cap"):
        assert field in (caught.value.details() or "")
    # A chief of another zone cannot register someone in z-1.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.stub.CreatePerson(
            new_member(), metadata=api.as_("chief-2", "zone_chief", zones=("z-2",))
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # An informant is registered only by intake officers and custodians.
    informant = new_member("i-1")
    informant.roles[:] = ["village_informant"]
    informant.home_township_id, informant.village_id = "", "v-1"
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await api.stub.CreatePerson(informant, metadata=api.as_("chief", "zone_chief"))
    assert hidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with api.database.session() as session:
        assert await get_person(session, "p-new") is None
    made = await api.stub.CreatePerson(informant, metadata=api.as_("in", "intake_officer"))
    assert made.person.home_township_id == "t-1"


async def test_moving_a_township_publishes_it_and_moves_its_people(api: Api) -> None:
    head = api.as_("head", "county_leadership")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.stub.PlaceTownship(
            registry_pb2.PlaceTownshipRequest(
                idempotency_key="m",
                county_id="c-rg",
                township_id="t-2",
                zone_id="z-2",
                name="乙镇",
                effective_from="2026-06-01",
            ),
            metadata=api.as_("chief", "zone_chief"),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    before = len(await placed_events(api.database))
    move = registry_pb2.PlaceTownshipRequest(
        idempotency_key="m-1",
        county_id="c-rg",
        township_id="t-2",
        zone_id="z-2",
        name="乙镇",
        effective_from="2026-06-01",
    )
    moved = await api.stub.PlaceTownship(move, metadata=head)
    await api.stub.PlaceTownship(move, metadata=head)
    assert list(moved.changed_fields) == ["effective_from", "zone_id"]
    events = await placed_events(api.database)
    assert len(events) == before + 1
    assert events[-1]["township_id"] == "t-2" and events[-1]["zone_id"] == "z-2"
    async with api.database.session() as session:
        person = await get_person(session, "p-2")
    assert person is not None and person.zone_id == "z-2"

    zone = await api.stub.GetZone(registry_pb2.GetZoneRequest(zone_id="z-2"), metadata=head)
    assert list(zone.zone.township_ids) == ["t-2", "t-3"]
    page = await api.stub.ListTownships(
        registry_pb2.ListTownshipsRequest(county_id="c-rg", page_size=2), metadata=head
    )
    last = await api.stub.ListTownships(
        registry_pb2.ListTownshipsRequest(
            county_id="c-rg", page_size=2, page_token=page.next_page_token
        ),
        metadata=head,
    )
    assert [t.township_id for t in [*page.townships, *last.townships]] == ["t-1", "t-2", "t-3"]
    zones = await api.stub.ListZones(registry_pb2.ListZonesRequest(county_id="c-rg"), metadata=head)
    assert [z.zone_id for z in zones.zones] == ["z-1", "z-2"]


async def test_zone_leaders_must_hold_the_role(api: Api) -> None:
    head = api.as_("head", "county_leadership")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.UpdateZone(
            registry_pb2.UpdateZoneRequest(
                idempotency_key="z", zone_id="z-2", name="第二协作区", chief_id="p-2"
            ),
            metadata=head,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    done = await api.stub.UpdateZone(
        registry_pb2.UpdateZoneRequest(
            idempotency_key="z-1", zone_id="z-2", name="第二协作区", chief_id="chief-2"
        ),
        metadata=head,
    )
    assert list(done.changed_fields) == ["chief_id"]
    changes = await api.stub.ListRegistryChanges(
        registry_pb2.ListRegistryChangesRequest(record_type="zone", record_id="z-2"),
        metadata=api.as_("p-2", "township_member"),
    )
    assert [c.fields for c in changes.changes] == [["chief_id"]]


async def test_staff_and_zone_names_are_published_for_reports_but_never_an_informants(
    api: Api,
) -> None:
    await api.stub.CreatePerson(new_member(), metadata=api.as_("chief", "zone_chief"))
    informant = new_member("i-2")
    informant.person_id, informant.name = "p-informant", "王信息员"
    informant.roles[:] = ["village_informant"]
    informant.home_township_id, informant.village_id = "", "v-1"
    await api.stub.CreatePerson(informant, metadata=api.as_("in", "intake_officer"))
    await api.stub.UpdateZone(
        registry_pb2.UpdateZoneRequest(idempotency_key="zn", zone_id="z-2", name="第二片区"),
        metadata=api.as_("head", "county_leadership"),
    )
    async with api.database.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.event_type == UnitNamed.event_type)
            )
        ).all()
    named = {
        (p["kind"], p["unit_id"]): p["name"] for p in map(json.loads, (r.payload for r in rows))
    }
    assert named[("person", "p-new")] == "新人"
    assert named[("zone", "z-2")] == "第二片区"
    assert ("person", "p-informant") not in named
    assert all("王信息员" not in row.payload for row in rows)
