"""gRPC face of registry maintenance: people, zones and townships, every change in history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import grpc
from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.staffing.v1 import registry_pb2, registry_pb2_grpc

from services.contracts.staffing import TownshipPlaced, UnitNamed
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    shorten,
)
from services.runtime.outbox import record_event
from services.runtime.tokens import Principal
from services.staffing.api import convert, fields, paging, policy
from services.staffing.domain.registry import Person, PersonStatus, Role, StatusPeriod
from services.staffing.domain.registry_edits import id_problem, person_problems
from services.staffing.store import history, idempotency, registry
from services.staffing.store.records_tables import RegistryChangeRow
from services.staffing.store.tables import PersonRow, PersonStatusRow, TownshipRow, ZoneRow

SOURCE = "xiezuo/staffing"
RECORD_TYPES = ("person", "zone", "township")

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
PersonFields: TypeAlias = "registry_pb2.CreatePersonRequest | registry_pb2.UpdatePersonRequest"


def person_snapshot(row: PersonRow, statuses: list[PersonStatusRow]) -> dict[str, Any]:
    """A person's registry fields as history keeps them."""
    return {
        "name": row.name,
        "roles": convert.json_list(row.roles),
        "skills": convert.json_list(row.skills),
        "home_township_id": row.home_township_id,
        "village_id": row.village_id,
        "zone_id": row.zone_id,
        "workload_cap": row.workload_cap,
        "statuses": [
            [s.status, s.start.isoformat(), s.end.isoformat() if s.end else None]
            for s in sorted(statuses, key=lambda s: (s.start, s.status))
        ],
    }


def zone_snapshot(row: ZoneRow) -> dict[str, Any]:
    """A zone's fields as history keeps them."""
    return {"name": row.name, "chief_id": row.chief_id, "deputy_id": row.deputy_id}


def township_snapshot(row: TownshipRow) -> dict[str, Any]:
    """A township's fields as history keeps them."""
    return {
        "zone_id": row.zone_id,
        "name": row.name,
        "effective_from": row.effective_from.isoformat(),
    }


def township_message(row: TownshipRow) -> registry_pb2.Township:
    """A township row as its message."""
    return registry_pb2.Township(
        township_id=row.township_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        name=row.name,
        effective_from=row.effective_from.isoformat(),
    )


def _person_violations(request: PersonFields) -> list[FieldViolation]:
    statuses = [(s.status, s.start_date, s.end_date) for s in request.statuses]
    return [
        FieldViolation(name, problem)
        for name, problem in person_problems(
            name=request.name,
            roles=list(request.roles),
            skills=list(request.skills),
            workload_cap=request.workload_cap,
            village_id=request.village_id,
            statuses=statuses,
        )
    ]


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    """Creates and updates registry records, keeping who changed what and when."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def _place_person(
        self, session: AsyncSession, county_id: str, request: PersonFields
    ) -> tuple[str | None, str | None]:
        """The person's home township and zone, checked against the register."""
        home = request.home_township_id or None
        if request.village_id:
            village = await registry.village_of(session, request.village_id)
            if village is None or village.county_id != county_id:
                raise InvalidArgument([FieldViolation("village_id", "unknown village")])
            if home is not None and village.township_id != home:
                raise InvalidArgument([FieldViolation("village_id", f"is not in township {home}")])
            home = village.township_id
        if home is None:
            return None, None
        township = await registry.township_of(session, home)
        if township is None or township.county_id != county_id:
            raise InvalidArgument([FieldViolation("home_township_id", "unknown township")])
        return home, township.zone_id

    async def _save_person(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        county_id: str,
        person_id: str,
        request: PersonFields,
        before: PersonRow | None,
        at: datetime,
    ) -> tuple[PersonRow, list[PersonStatusRow], RegistryChangeRow | None]:
        home, zone = await self._place_person(session, county_id, request)
        informant = Role.VILLAGE_INFORMANT.value in request.roles
        zones: set[str | None] = {zone}
        before_snapshot = None
        if before is not None:
            zones.add(before.zone_id)
            informant = informant or before.informant
            before_snapshot = person_snapshot(
                before, await registry.statuses_of(session, person_id)
            )
        policy.authorize_edit_person(
            principal, county_id=county_id, zone_ids=zones, informant=informant
        )
        person = Person(
            person_id=person_id,
            county_id=county_id,
            name=request.name.strip(),
            roles=frozenset(Role(role) for role in request.roles),
            home_township_id=home,
            zone_id=zone,
            skills=frozenset(request.skills),
            statuses=tuple(
                StatusPeriod(
                    PersonStatus(s.status),
                    date.fromisoformat(s.start_date),
                    date.fromisoformat(s.end_date) if s.end_date else None,
                )
                for s in request.statuses
            ),
            workload_cap=request.workload_cap,
            village_id=request.village_id or None,
        )
        row = await registry.save_person(session, person, now=at)
        await session.flush()
        statuses = await registry.statuses_of(session, person_id)
        change = await history.record_change(
            session,
            county_id=county_id,
            record_type="person",
            record_id=person_id,
            before=before_snapshot,
            after=person_snapshot(row, statuses),
            changed_by=principal.subject,
            at=at,
        )
        return row, statuses, change

    async def CreatePerson(
        self, request: registry_pb2.CreatePersonRequest, context: Context
    ) -> registry_pb2.CreatePersonResponse:
        """Add a person (idempotent by key); the change is kept in history."""
        violations = _person_violations(request)
        for name, value in (("county_id", request.county_id), ("person_id", request.person_id)):
            problem = id_problem(value)
            if problem:
                violations.append(FieldViolation(name, problem))
        if not request.idempotency_key:
            violations.append(FieldViolation("idempotency_key", "is required"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        request_print = idempotency.fingerprint({"create": request.SerializeToString().hex()})
        async with self._db.transaction() as session:
            earlier = await _earlier(session, principal, "CreatePerson", request, request_print)
            if earlier is None:
                if await registry.get_person(session, request.person_id) is not None:
                    raise AlreadyExists(f"person {shorten(request.person_id)}")
                now = datetime.now(UTC)
                row, statuses, change = await self._save_person(
                    session,
                    principal,
                    county_id=request.county_id,
                    person_id=request.person_id,
                    request=request,
                    before=None,
                    at=now,
                )
                _remember(session, principal, "CreatePerson", request, request_print, change, now)
            else:
                found = await registry.get_person(session, request.person_id)
                assert found is not None
                row, statuses = found, await registry.statuses_of(session, found.person_id)
            return registry_pb2.CreatePersonResponse(person=convert.person_message(row, statuses))

    async def UpdatePerson(
        self, request: registry_pb2.UpdatePersonRequest, context: Context
    ) -> registry_pb2.UpdatePersonResponse:
        """Replace a person's registry fields (idempotent by key); the change is kept."""
        violations = _person_violations(request)
        for name, value in (
            ("idempotency_key", request.idempotency_key),
            ("person_id", request.person_id),
        ):
            if not value:
                violations.append(FieldViolation(name, "is required"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        request_print = idempotency.fingerprint({"update": request.SerializeToString().hex()})
        async with self._db.transaction() as session:
            before = await registry.get_person(session, request.person_id)
            if before is None or not principal.can_see_county(before.county_id):
                raise NotFound("person", request.person_id)
            earlier = await _earlier(session, principal, "UpdatePerson", request, request_print)
            if earlier is not None:
                change = await _change(session, earlier)
                statuses = await registry.statuses_of(session, before.person_id)
                return registry_pb2.UpdatePersonResponse(
                    person=convert.person_message(before, statuses),
                    changed_fields=history.fields_of(change),
                )
            now = datetime.now(UTC)
            row, statuses, change = await self._save_person(
                session,
                principal,
                county_id=before.county_id,
                person_id=before.person_id,
                request=request,
                before=before,
                at=now,
            )
            _remember(session, principal, "UpdatePerson", request, request_print, change, now)
            return registry_pb2.UpdatePersonResponse(
                person=convert.person_message(row, statuses),
                changed_fields=history.fields_of(change),
            )

    async def GetZone(
        self, request: registry_pb2.GetZoneRequest, context: Context
    ) -> registry_pb2.GetZoneResponse:
        """One zone and its townships."""
        fields.require(zone_id=request.zone_id)
        principal = current_principal()
        async with self._db.transaction() as session:
            zone = await registry.zone_of(session, request.zone_id)
            if zone is None:
                raise NotFound("zone", request.zone_id)
            policy.authorize_read_structure(
                principal, county_id=zone.county_id, what=f"zone {zone.zone_id}"
            )
            return registry_pb2.GetZoneResponse(zone=await _zone_message(session, zone))

    async def ListZones(
        self, request: registry_pb2.ListZonesRequest, context: Context
    ) -> registry_pb2.ListZonesResponse:
        """A page of the county's zones."""
        fields.require(county_id=request.county_id)
        scope = (request.county_id, "zones")
        limit, after = paging.page(request.page_size, request.page_token, scope)
        _authorize_read_county(request.county_id)
        async with self._db.transaction() as session:
            rows = await registry.page_zones(
                session, county_id=request.county_id, after=after, limit=limit + 1
            )
            rows, token = paging.next_page(rows, limit, scope, lambda row: row.zone_id)
            zones = [await _zone_message(session, row) for row in rows]
        return registry_pb2.ListZonesResponse(zones=zones, next_page_token=token)

    async def UpdateZone(
        self, request: registry_pb2.UpdateZoneRequest, context: Context
    ) -> registry_pb2.UpdateZoneResponse:
        """Rename a zone or appoint its chief and deputy (idempotent by key)."""
        violations = fields.missing(
            idempotency_key=request.idempotency_key,
            zone_id=request.zone_id,
            name=request.name.strip(),
        )
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        request_print = idempotency.fingerprint({"zone": request.SerializeToString().hex()})
        async with self._db.transaction() as session:
            zone = await registry.zone_of(session, request.zone_id)
            if zone is None or not principal.can_see_county(zone.county_id):
                raise NotFound("zone", request.zone_id)
            policy.authorize_edit_structure(principal, county_id=zone.county_id)
            earlier = await _earlier(session, principal, "UpdateZone", request, request_print)
            if earlier is not None:
                return registry_pb2.UpdateZoneResponse(
                    zone=await _zone_message(session, zone),
                    changed_fields=history.fields_of(await _change(session, earlier)),
                )
            leaders = []
            for name, person_id, role in (
                ("chief_id", request.chief_id, Role.ZONE_CHIEF),
                ("deputy_id", request.deputy_id, Role.DEPUTY_CHIEF),
            ):
                if not person_id:
                    continue
                person = await registry.get_person(session, person_id)
                if person is None or person.county_id != zone.county_id:
                    leaders.append(FieldViolation(name, "unknown person"))
                elif role.value not in convert.json_list(person.roles):
                    leaders.append(FieldViolation(name, f"lacks the role {role.value}"))
            if leaders:
                raise InvalidArgument(leaders)
            before = zone_snapshot(zone)
            zone.name = request.name.strip()
            zone.chief_id = request.chief_id or None
            zone.deputy_id = request.deputy_id or None
            session.add(zone)
            now = datetime.now(UTC)
            change = await history.record_change(
                session,
                county_id=zone.county_id,
                record_type="zone",
                record_id=zone.zone_id,
                before=before,
                after=zone_snapshot(zone),
                changed_by=principal.subject,
                at=now,
            )
            if "name" in history.fields_of(change):
                record_event(
                    session,
                    UnitNamed(
                        county_id=zone.county_id,
                        zone_id=zone.zone_id,
                        kind="zone",
                        unit_id=zone.zone_id,
                        name=zone.name,
                    ),
                    source=SOURCE,
                    occurred_at=now,
                )
            _remember(session, principal, "UpdateZone", request, request_print, change, now)
            return registry_pb2.UpdateZoneResponse(
                zone=await _zone_message(session, zone), changed_fields=history.fields_of(change)
            )

    async def ListTownships(
        self, request: registry_pb2.ListTownshipsRequest, context: Context
    ) -> registry_pb2.ListTownshipsResponse:
        """A page of the county's (or one zone's) townships."""
        fields.require(county_id=request.county_id)
        scope = (request.county_id, f"townships|{request.zone_id}")
        limit, after = paging.page(request.page_size, request.page_token, scope)
        _authorize_read_county(request.county_id)
        async with self._db.transaction() as session:
            rows = await registry.page_townships(
                session,
                county_id=request.county_id,
                zone_id=request.zone_id,
                after=after,
                limit=limit + 1,
            )
        rows, token = paging.next_page(rows, limit, scope, lambda row: row.township_id)
        return registry_pb2.ListTownshipsResponse(
            townships=[township_message(row) for row in rows], next_page_token=token
        )

    async def PlaceTownship(
        self, request: registry_pb2.PlaceTownshipRequest, context: Context
    ) -> registry_pb2.PlaceTownshipResponse:
        """Create a township or move it to another zone; publishes TownshipPlaced on change."""
        violations = []
        for name, value in (
            ("county_id", request.county_id),
            ("township_id", request.township_id),
            ("zone_id", request.zone_id),
        ):
            problem = id_problem(value)
            if problem:
                violations.append(FieldViolation(name, problem))
        if not request.idempotency_key:
            violations.append(FieldViolation("idempotency_key", "is required"))
        if not request.name.strip():
            violations.append(FieldViolation("name", "is required"))
        effective_from = fields.day(request.effective_from, "effective_from", violations)
        if violations:
            raise InvalidArgument(violations)
        assert effective_from is not None
        principal = current_principal()
        policy.authorize_edit_structure(principal, county_id=request.county_id)
        request_print = idempotency.fingerprint({"place": request.SerializeToString().hex()})
        async with self._db.transaction() as session:
            zone = await registry.zone_of(session, request.zone_id)
            if zone is None or zone.county_id != request.county_id:
                raise InvalidArgument([FieldViolation("zone_id", "unknown zone")])
            township = await registry.township_of(session, request.township_id)
            if township is not None and township.county_id != request.county_id:
                raise AlreadyExists(f"township {shorten(request.township_id)}")
            earlier = await _earlier(session, principal, "PlaceTownship", request, request_print)
            if earlier is not None and township is not None:
                return registry_pb2.PlaceTownshipResponse(
                    township=township_message(township),
                    changed_fields=history.fields_of(await _change(session, earlier)),
                )
            now = datetime.now(UTC)
            before = township_snapshot(township) if township is not None else None
            if township is None:
                township = TownshipRow(
                    township_id=request.township_id,
                    county_id=request.county_id,
                    zone_id=zone.zone_id,
                    name=request.name.strip(),
                    effective_from=effective_from,
                )
            else:
                township.zone_id = zone.zone_id
                township.name = request.name.strip()
                township.effective_from = effective_from
            session.add(township)
            change = await history.record_change(
                session,
                county_id=request.county_id,
                record_type="township",
                record_id=township.township_id,
                before=before,
                after=township_snapshot(township),
                changed_by=principal.subject,
                at=now,
            )
            if change is not None:
                if before is not None and before["zone_id"] != zone.zone_id:
                    await self._move_people(session, principal, township, at=now)
                # Intake routes reports by township: it learns of every placement.
                record_event(
                    session,
                    TownshipPlaced(
                        county_id=township.county_id,
                        zone_id=township.zone_id,
                        township_id=township.township_id,
                        township_name=township.name,
                        effective_from=township.effective_from,
                    ),
                    source=SOURCE,
                    occurred_at=now,
                )
            _remember(session, principal, "PlaceTownship", request, request_print, change, now)
            return registry_pb2.PlaceTownshipResponse(
                township=township_message(township), changed_fields=history.fields_of(change)
            )

    async def _move_people(
        self, session: AsyncSession, principal: Principal, township: TownshipRow, *, at: datetime
    ) -> None:
        """People of a township move with it: their zone (and zone pool) follows."""
        for person in await registry.people_of_township(session, township.township_id):
            statuses = await registry.statuses_of(session, person.person_id)
            before = person_snapshot(person, statuses)
            person.zone_id, person.updated_at = township.zone_id, at
            session.add(person)
            await history.record_change(
                session,
                county_id=person.county_id,
                record_type="person",
                record_id=person.person_id,
                before=before,
                after=person_snapshot(person, statuses),
                changed_by=principal.subject,
                at=at,
            )

    async def ListRegistryChanges(
        self, request: registry_pb2.ListRegistryChangesRequest, context: Context
    ) -> registry_pb2.ListRegistryChangesResponse:
        """A page of a record's history, oldest first."""
        violations = []
        if request.record_type not in RECORD_TYPES:
            violations.append(FieldViolation("record_type", f"must be one of {RECORD_TYPES}"))
        if not request.record_id:
            violations.append(FieldViolation("record_id", "is required"))
        if violations:
            raise InvalidArgument(violations)
        scope = (request.record_type, request.record_id)
        limit, after = paging.page(request.page_size, request.page_token, scope)
        principal = current_principal()
        async with self._db.transaction() as session:
            await self._authorize_history(
                session, principal, request.record_type, request.record_id
            )
            rows = await history.changes_page(
                session,
                record_type=request.record_type,
                record_id=request.record_id,
                after=int(after or 0),
                limit=limit + 1,
            )
        rows, token = paging.next_page(rows, limit, scope, lambda row: str(row.change_id))
        return registry_pb2.ListRegistryChangesResponse(
            changes=[_change_message(row) for row in rows], next_page_token=token
        )

    async def _authorize_history(
        self, session: AsyncSession, principal: Principal, record_type: str, record_id: str
    ) -> None:
        if record_type == "person":
            person = await registry.get_person(session, record_id)
            if person is None:
                raise NotFound("person", record_id)
            # A person's history shows their record: whoever may read them may read it.
            policy.authorize_read_person(
                principal,
                county_id=person.county_id,
                zone_id=person.zone_id,
                person_id=person.person_id,
                informant=person.informant,
            )
            return
        row: ZoneRow | TownshipRow | None
        if record_type == "zone":
            row = await registry.zone_of(session, record_id)
        else:
            row = await registry.township_of(session, record_id)
        if row is None:
            raise NotFound(record_type, record_id)
        policy.authorize_read_structure(
            principal, county_id=row.county_id, what=f"{record_type} {record_id}"
        )


def _authorize_read_county(county_id: str) -> None:
    policy.authorize_read_structure(
        current_principal(), county_id=county_id, what=f"county {county_id}"
    )


async def _zone_message(session: AsyncSession, zone: ZoneRow) -> registry_pb2.Zone:
    townships = await registry.page_townships(
        session, county_id=zone.county_id, zone_id=zone.zone_id, after="", limit=10_000
    )
    return registry_pb2.Zone(
        zone_id=zone.zone_id,
        county_id=zone.county_id,
        name=zone.name,
        chief_id=zone.chief_id or "",
        deputy_id=zone.deputy_id or "",
        township_ids=[township.township_id for township in townships],
    )


def _change_message(row: RegistryChangeRow) -> registry_pb2.RegistryChange:
    return registry_pb2.RegistryChange(
        change_id=row.change_id or 0,
        record_type=row.record_type,
        record_id=row.record_id,
        action=row.action,
        fields=[str(name) for name in json.loads(row.fields)],
        before_json=row.before or "",
        after_json=row.after,
        changed_by=row.changed_by,
        changed_at=convert.timestamp(row.changed_at),
    )


async def _earlier(
    session: AsyncSession, principal: Principal, call: str, request: Any, request_print: str
) -> str | None:
    try:
        return await idempotency.earlier_result(
            session,
            subject=principal.subject,
            call=call,
            key=request.idempotency_key,
            request_print=request_print,
        )
    except idempotency.KeyReused as exc:
        raise InvalidArgument([FieldViolation("idempotency_key", str(exc))]) from exc


def _remember(
    session: AsyncSession,
    principal: Principal,
    call: str,
    request: Any,
    request_print: str,
    change: RegistryChangeRow | None,
    at: datetime,
) -> None:
    # The result is the change made (its id), so a repeat can answer with the same fields.
    result = str(change.change_id) if change else ""
    idempotency.remember(
        session,
        subject=principal.subject,
        call=call,
        key=request.idempotency_key,
        request_print=request_print,
        result_id=result,
        at=at,
    )


async def _change(session: AsyncSession, result_id: str) -> RegistryChangeRow | None:
    if not result_id:
        return None
    return await session.get(RegistryChangeRow, int(result_id))
