"""gRPC face of staffing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.staffing.v1 import staffing_pb2, staffing_pb2_grpc

from services.contracts.staffing import (
    AssignmentDeclined,
    DrawOverridden,
    RecusalRecorded,
    TeamAssigned,
    TeamMember,
)
from services.runtime import audit
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.runtime.outbox import record_event
from services.runtime.tokens import Principal
from services.staffing.api import convert, fields, paging, policy
from services.staffing.domain.draw import (
    OVERRIDE_VERSION,
    DrawRecord,
    override_record,
    replay,
    seed_is_genuine,
)
from services.staffing.domain.draw_record import text_hash
from services.staffing.domain.recusal_grounds import RecusalGrounds
from services.staffing.drawing import SOURCE, TeamDrawer
from services.staffing.store import casework, draws, registry
from services.staffing.store.tables import ConflictRow, DrawRow, RecusalRow

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _derived_id(principal: Principal, call: str, key: str) -> str:
    """The same caller repeating a call with the same key gets the same record back."""
    return hashlib.sha256(f"{principal.subject}|{call}|{key}".encode()).hexdigest()[:32]


class StaffingServicer(staffing_pb2_grpc.StaffingServiceServicer):
    """The registry, conflicts, recusals and team draws."""

    def __init__(
        self, database: Database, drawer: TeamDrawer, recusal_grounds: RecusalGrounds
    ) -> None:
        self._db = database
        self._drawer = drawer
        # The county's recusal grounds (rule data): a request's ground must be one of them.
        self._grounds = recusal_grounds

    async def _draw(self, session: AsyncSession, draw_id: str) -> tuple[DrawRow, DrawRecord]:
        row = await session.get(DrawRow, draw_id)
        if row is None:
            raise NotFound("draw", draw_id)
        return row, draws.record_of(row)

    async def ExplainDraw(
        self, request: staffing_pb2.ExplainDrawRequest, context: Context
    ) -> staffing_pb2.ExplainDrawResponse:
        """A recorded draw with every filter stage, exclusion, seed and result."""
        fields.require(draw_id=request.draw_id)
        principal = current_principal()
        async with self._db.transaction() as session:
            row, record = await self._draw(session, request.draw_id)
            policy.authorize_read_draw(
                principal, county_id=row.county_id, zone_id=row.zone_id, draw_id=row.draw_id
            )
            await _audit(session, principal, row.county_id, "draw.read", "draw", row.draw_id)
            return staffing_pb2.ExplainDrawResponse(draw=convert.draw_message(row, record))

    async def ReplayDraw(
        self, request: staffing_pb2.ReplayDrawRequest, context: Context
    ) -> staffing_pb2.ReplayDrawResponse:
        """Recompute a draw from its record and say whether it matches."""
        fields.require(draw_id=request.draw_id)
        principal = current_principal()
        async with self._db.transaction() as session:
            row, record = await self._draw(session, request.draw_id)
            policy.authorize_read_draw(
                principal, county_id=row.county_id, zone_id=row.zone_id, draw_id=row.draw_id
            )
            result = replay(record)
            await _audit(
                session,
                principal,
                row.county_id,
                "draw.replayed",
                "draw",
                row.draw_id,
                {"matches": result.matches},
            )
        return staffing_pb2.ReplayDrawResponse(
            matches=result.matches,
            differences=result.differences,
            seed_genuine=record.algorithm_version != OVERRIDE_VERSION
            and seed_is_genuine(record, self._drawer.secret_for(row.county_id)),
            # The row's text is what was hashed when the draw was recorded (every format).
            hash_intact=text_hash(row.record) == row.record_hash,
            recomputed_member_person_ids=result.recomputed.members,
        )

    async def GetPerson(
        self, request: staffing_pb2.GetPersonRequest, context: Context
    ) -> staffing_pb2.GetPersonResponse:
        """One person, if the caller may see them."""
        fields.require(person_id=request.person_id)
        principal = current_principal()
        async with self._db.transaction() as session:
            row = await registry.get_person(session, request.person_id)
            if row is None:
                raise NotFound("person", request.person_id)
            policy.authorize_read_person(
                principal,
                county_id=row.county_id,
                zone_id=row.zone_id,
                person_id=row.person_id,
                informant=row.informant,
            )
            statuses = await registry.statuses_of(session, row.person_id)
            load = await casework.open_assignment_counts(session, [row.person_id])
            await _audit(session, principal, row.county_id, "person.read", "person", row.person_id)
            return staffing_pb2.GetPersonResponse(
                person=convert.person_message(row, statuses, load.get(row.person_id, 0))
            )

    async def ListPeople(
        self, request: staffing_pb2.ListPeopleRequest, context: Context
    ) -> staffing_pb2.ListPeopleResponse:
        """A page of the county's people in id order."""
        violations = []
        if not request.county_id:
            violations.append(FieldViolation("county_id", "is required"))
        scope = (request.county_id, request.zone_id)
        limit = paging.page_size(request.page_size, violations)
        after = paging.page_after(request.page_token, scope, violations)
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones, informants = policy.listable_zones(
            principal, county_id=request.county_id, zone_id=request.zone_id
        )
        async with self._db.transaction() as session:
            rows = await registry.page_people(
                session,
                county_id=request.county_id,
                zone_ids=zones,
                include_informants=informants,
                after=after,
                limit=limit + 1,
            )
            rows, next_token = paging.next_page(rows, limit, scope, lambda row: row.person_id)
            people = []
            load = await casework.open_assignment_counts(session, [row.person_id for row in rows])
            for row in rows:
                await _audit(
                    session, principal, row.county_id, "person.read", "person", row.person_id
                )
                statuses = await registry.statuses_of(session, row.person_id)
                people.append(convert.person_message(row, statuses, load.get(row.person_id, 0)))
        return staffing_pb2.ListPeopleResponse(people=people, next_page_token=next_token)

    async def DeclareConflict(
        self, request: staffing_pb2.DeclareConflictRequest, context: Context
    ) -> staffing_pb2.DeclareConflictResponse:
        """Record a declared conflict (idempotent by key)."""
        violations = fields.missing(
            idempotency_key=request.idempotency_key,
            county_id=request.county_id,
            person_id=request.person_id,
            party_key=request.party_key,
        )
        relation = convert.RELATIONS.get(request.relation)
        if relation is None:
            violations.append(FieldViolation("relation", "must be set"))
        valid_from = fields.day(request.valid_from, "valid_from", violations)
        valid_until = (
            fields.day(request.valid_until, "valid_until", violations)
            if request.valid_until
            else None
        )
        if valid_from and valid_until and valid_until < valid_from:
            violations.append(FieldViolation("valid_until", "is before valid_from"))
        if violations:
            raise InvalidArgument(violations)
        assert relation is not None and valid_from is not None
        principal = current_principal()
        conflict_id = _derived_id(principal, "DeclareConflict", request.idempotency_key)
        async with self._db.transaction() as session:
            person = await registry.get_person(session, request.person_id)
            if person is None or person.county_id != request.county_id:
                raise NotFound("person", request.person_id)
            policy.authorize_declare_conflict(
                principal,
                county_id=person.county_id,
                zone_id=person.zone_id,
                person_id=person.person_id,
            )
            if await casework.get_conflict(session, conflict_id) is not None:
                return staffing_pb2.DeclareConflictResponse(conflict_id=conflict_id)
            now = datetime.now(UTC)
            session.add(
                ConflictRow(
                    conflict_id=conflict_id,
                    county_id=person.county_id,
                    person_id=person.person_id,
                    party_key=request.party_key,
                    relation=relation.value,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    declared_by=principal.subject,
                    declared_at=now,
                )
            )
            await _audit(
                session,
                principal,
                person.county_id,
                "conflict.declared",
                "person",
                person.person_id,
                {"conflict_id": conflict_id, "relation": relation.value},
            )
        return staffing_pb2.DeclareConflictResponse(conflict_id=conflict_id)

    async def RequestRecusal(
        self, request: staffing_pb2.RequestRecusalRequest, context: Context
    ) -> staffing_pb2.RequestRecusalResponse:
        """Raise a recusal request (idempotent by key)."""
        violations = fields.missing(
            idempotency_key=request.idempotency_key,
            county_id=request.county_id,
            zone_id=request.zone_id,
            case_id=request.case_id,
            person_id=request.person_id,
        )
        ground, problem = recusal_ground_of(request, self._grounds)
        if problem is not None:
            violations.append(problem)
        raised_by = convert.RAISERS.get(request.raised_by)
        if raised_by is None:
            violations.append(FieldViolation("raised_by", "must be set"))
        if violations:
            raise InvalidArgument(violations)
        assert raised_by is not None
        principal = current_principal()
        policy.authorize_request_recusal(
            principal,
            county_id=request.county_id,
            zone_id=request.zone_id,
            person_id=request.person_id,
            raised_by=raised_by.value,
        )
        recusal_id = _derived_id(principal, "RequestRecusal", request.idempotency_key)
        async with self._db.transaction() as session:
            person = await registry.get_person(session, request.person_id)
            if person is None or person.county_id != request.county_id:
                raise NotFound("person", request.person_id)
            if await casework.get_recusal(session, recusal_id) is None:
                session.add(
                    RecusalRow(
                        recusal_id=recusal_id,
                        county_id=request.county_id,
                        zone_id=request.zone_id,
                        case_id=request.case_id,
                        person_id=request.person_id,
                        ground=ground,
                        raised_by=raised_by.value,
                        state="requested",
                        requested_by=principal.subject,
                        requested_at=datetime.now(UTC),
                    )
                )
                await _audit(
                    session,
                    principal,
                    request.county_id,
                    "recusal.requested",
                    "recusal",
                    recusal_id,
                    {"case_id": request.case_id, "ground": ground},
                )
        return staffing_pb2.RequestRecusalResponse(recusal_id=recusal_id)

    async def DecideRecusal(
        self, request: staffing_pb2.DecideRecusalRequest, context: Context
    ) -> staffing_pb2.DecideRecusalResponse:
        """The commission head decides; the decision is recorded, audited and published."""
        fields.require(idempotency_key=request.idempotency_key, recusal_id=request.recusal_id)
        principal = current_principal()
        decided = "granted" if request.granted else "refused"
        async with self._db.transaction() as session:
            row = await casework.get_recusal(session, request.recusal_id)
            if row is None:
                raise NotFound("recusal", request.recusal_id)
            policy.authorize_decide_recusal(
                principal, county_id=row.county_id, recusal_id=row.recusal_id
            )
            if row.state == decided:
                return staffing_pb2.DecideRecusalResponse(recusal_id=row.recusal_id, state=decided)
            if row.state != "requested":
                raise FailedPrecondition(f"recusal {row.recusal_id} is already {row.state}")
            now = datetime.now(UTC)
            row.state, row.decided_by, row.decided_at = decided, principal.subject, now
            session.add(row)
            if request.granted:
                # A recused person leaves the case's open teams at once.
                team = [
                    member
                    for member in await casework.open_case_assignments(session, row.case_id)
                    if member.person_id == row.person_id
                ]
                casework.close_assignments(team, state="recused", reason=row.ground, at=now)
            await _audit(
                session,
                principal,
                row.county_id,
                "recusal.decided",
                "recusal",
                row.recusal_id,
                {"granted": request.granted, "case_id": row.case_id},
            )
            record_event(
                session,
                RecusalRecorded(
                    county_id=row.county_id,
                    zone_id=row.zone_id,
                    recusal_id=row.recusal_id,
                    case_id=row.case_id,
                    person_id=row.person_id,
                    ground=row.ground,
                    raised_by_role=row.raised_by,
                    granted=request.granted,
                    decided_by=principal.subject,
                    decided_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
        return staffing_pb2.DecideRecusalResponse(recusal_id=request.recusal_id, state=decided)

    async def AcceptAssignment(
        self, request: staffing_pb2.AcceptAssignmentRequest, context: Context
    ) -> staffing_pb2.AcceptAssignmentResponse:
        """The drawn person accepts."""
        fields.require(idempotency_key=request.idempotency_key, draw_id=request.draw_id)
        principal = current_principal()
        async with self._db.transaction() as session:
            row, _ = await self._draw(session, request.draw_id)
            policy.authorize_answer_assignment(
                principal, county_id=row.county_id, person_id=principal.subject, draw_id=row.draw_id
            )
            held = await casework.assignment(session, row.draw_id, principal.subject)
            if held is None:
                raise NotFound("assignment", f"{principal.subject} in draw {row.draw_id}")
            if held.state == "accepted":
                return staffing_pb2.AcceptAssignmentResponse(state="accepted")
            if held.state != "drawn":
                raise FailedPrecondition(f"the assignment is {held.state}")
            held.state, held.updated_at = "accepted", datetime.now(UTC)
            session.add(held)
            await _audit(
                session, principal, row.county_id, "assignment.accepted", "draw", row.draw_id
            )
        return staffing_pb2.AcceptAssignmentResponse(state="accepted")

    async def DeclineAssignment(
        self, request: staffing_pb2.DeclineAssignmentRequest, context: Context
    ) -> staffing_pb2.DeclineAssignmentResponse:
        """The drawn person declines with a reason; a replacement is drawn and recorded."""
        fields.require(
            idempotency_key=request.idempotency_key,
            draw_id=request.draw_id,
            reason=request.reason.strip(),
        )
        principal = current_principal()
        async with self._db.transaction() as session:
            row, record = await self._draw(session, request.draw_id)
            policy.authorize_answer_assignment(
                principal, county_id=row.county_id, person_id=principal.subject, draw_id=row.draw_id
            )
            held = await casework.assignment(session, row.draw_id, principal.subject)
            if held is None:
                raise NotFound("assignment", f"{principal.subject} in draw {row.draw_id}")
            if held.state == "declined":
                latest = await draws.latest_round(session, row.request_id)
                assert latest is not None
                return staffing_pb2.DeclineAssignmentResponse(redraw_id=latest.draw_id)
            if held.state not in draws.OPEN_STATES:
                raise FailedPrecondition(f"the assignment is {held.state}")
            now = datetime.now(UTC)
            casework.close_assignments([held], state="declined", reason=request.reason, at=now)
            session.add(held)
            await session.flush()
            redraw = await self._redraw(session, record, row, principal=principal, at=now)
            await _audit(
                session,
                principal,
                row.county_id,
                "assignment.declined",
                "draw",
                row.draw_id,
                {"redraw_id": redraw.draw_id},
            )
            record_event(
                session,
                AssignmentDeclined(
                    county_id=row.county_id,
                    zone_id=row.zone_id,
                    draw_id=row.draw_id,
                    redraw_id=redraw.draw_id,
                    request_id=row.request_id,
                    case_id=row.case_id,
                    person_id=principal.subject,
                    reason=request.reason.strip(),
                    declined_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
        return staffing_pb2.DeclineAssignmentResponse(redraw_id=redraw.draw_id)

    async def _redraw(
        self,
        session: AsyncSession,
        record: DrawRecord,
        row: DrawRow,
        *,
        principal: Principal,
        at: datetime,
    ) -> DrawRecord:
        """Draw one replacement, keeping the rest of the team and the skills it still covers."""
        team = await casework.open_team(session, row.request_id)
        kept_ids = [member.person_id for member in team]
        kept_skills: set[str] = set()
        for member_id in kept_ids:
            person = await registry.get_person(session, member_id)
            if person is not None:
                kept_skills.update(convert.json_list(person.skills))
        original = record.request
        replacement = original.model_copy(
            update={
                "team_size": max(1, original.team_size - len(kept_ids)),
                "required_skills": tuple(sorted(set(original.required_skills) - kept_skills)),
                "excluded_person_ids": tuple(
                    sorted(
                        {
                            *original.excluded_person_ids,
                            *kept_ids,
                            *await casework.declined_by(session, row.request_id),
                        }
                    )
                ),
                "on_date": at.date(),
            }
        )
        latest = await draws.latest_round(session, row.request_id)
        kept = []
        for member in team:
            person = await registry.get_person(session, member.person_id)
            kept.append(
                TeamMember(
                    person_id=member.person_id,
                    home_township_id=(person.home_township_id if person else None) or "",
                    leader=member.leader,
                )
            )
        return await self._drawer.draw(
            session,
            replacement,
            round_=(latest.round if latest else 0) + 1,
            cause="declined",
            actor=principal.subject,
            kept=kept,
        )

    async def OverrideDraw(
        self, request: staffing_pb2.OverrideDrawRequest, context: Context
    ) -> staffing_pb2.OverrideDrawResponse:
        """The zone chief sets the team instead of the draw, with a mandatory reason."""
        violations = fields.missing(
            idempotency_key=request.idempotency_key,
            draw_id=request.draw_id,
            reason=request.reason.strip(),
        )
        members = tuple(request.member_person_ids)
        if not members:
            violations.append(FieldViolation("member_person_ids", "is required"))
        elif len(set(members)) != len(members):
            violations.append(FieldViolation("member_person_ids", "names someone twice"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        override_id = _derived_id(principal, "OverrideDraw", request.idempotency_key)
        async with self._db.transaction() as session:
            row, record = await self._draw(session, request.draw_id)
            policy.authorize_override(
                principal, county_id=row.county_id, zone_id=row.zone_id, draw_id=row.draw_id
            )
            if await session.get(DrawRow, override_id) is not None:
                return staffing_pb2.OverrideDrawResponse(override_id=override_id)
            kept = []
            unknown = []
            for index, person_id in enumerate(members):
                person = await registry.get_person(session, person_id)
                if person is None or person.county_id != row.county_id or person.informant:
                    unknown.append(FieldViolation(f"member_person_ids[{index}]", "unknown person"))
                    continue
                kept.append(
                    TeamMember(
                        person_id=person_id,
                        home_township_id=person.home_township_id or "",
                        leader=index == 0,
                    )
                )
            if unknown:
                raise InvalidArgument(unknown)
            now = datetime.now(UTC)
            casework.close_assignments(
                await casework.open_team(session, row.request_id),
                state="replaced",
                reason=f"override {override_id}",
                at=now,
            )
            latest = await draws.latest_round(session, row.request_id)
            overridden = override_record(
                draw_id=override_id,
                request=record.request.model_copy(update={"on_date": now.date()}),
                members=members,
                previous_hash=await draws.chain_head(session, row.county_id),
                reason=request.reason,
                overridden_by=principal.subject,
            )
            await session.flush()
            await draws.save_draw(
                session,
                overridden,
                round_=(latest.round if latest else 0) + 1,
                cause="override",
                drawn_at=now,
            )
            await _audit(
                session,
                principal,
                row.county_id,
                "draw.overridden",
                "draw",
                row.draw_id,
                {"override_id": override_id, "reason": request.reason.strip()},
            )
            for event in (
                DrawOverridden(
                    county_id=row.county_id,
                    zone_id=row.zone_id,
                    override_id=override_id,
                    overridden_draw_id=row.draw_id,
                    request_id=row.request_id,
                    case_id=row.case_id,
                    member_person_ids=list(members),
                    reason=request.reason.strip(),
                    overridden_by=principal.subject,
                    overridden_at=now,
                ),
                TeamAssigned(
                    county_id=row.county_id,
                    zone_id=row.zone_id,
                    request_id=row.request_id,
                    case_id=row.case_id,
                    stage=row.stage,
                    draw_id=override_id,
                    members=kept,
                    assigned_at=now,
                ),
            ):
                record_event(session, event, source=SOURCE, occurred_at=now)
        return staffing_pb2.OverrideDrawResponse(override_id=override_id)


async def _audit(
    session: AsyncSession,
    principal: Principal,
    county_id: str,
    action: str,
    record_type: str,
    record_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await audit.append(
        session,
        county_id=county_id,
        actor=principal.subject,
        action=action,
        record_type=record_type,
        record_id=record_id,
        detail=detail,
    )


def recusal_ground_of(
    request: staffing_pb2.RequestRecusalRequest, grounds: RecusalGrounds
) -> tuple[str, FieldViolation | None]:
    """The request's ground code (recusal_ground_code, else the deprecated enum's), checked."""
    code = request.recusal_ground_code
    relation = convert.RELATIONS.get(request.ground)
    if code:
        if relation is not None and relation.value != code:
            return "", FieldViolation(
                "recusal_ground_code", f"names {code!r} but ground names {relation.value!r}"
            )
        problem = grounds.problem_with(code)
        return code, FieldViolation("recusal_ground_code", problem) if problem else None
    if relation is None:
        # Nothing usable given: name the field that replaces the enum.
        return "", FieldViolation("recusal_ground_code", "must be set (or the deprecated ground)")
    problem = grounds.problem_with(relation.value)
    return relation.value, FieldViolation("ground", problem) if problem else None
