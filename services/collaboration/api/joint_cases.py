"""gRPC face of joint investigations (联合审查调查): open (a county or the city), join, decline,
close, and each side's view.

County steps are the county leadership's; the city commission (role `city_commission`,
token scoped to the network's city id) opens joint cases between two member counties and
sees its own trail of them, never a case file or a team.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.collaboration.v1 import joint_cases_pb2 as pb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc as pb_grpc

from services.collaboration.api import policy
from services.collaboration.domain.joint_case import GROUND_MAX, JointKind, JointOutcome, State
from services.collaboration.domain.network import Network
from services.collaboration.joint_cases import (
    JointCaseDesk,
    JointCaseRefused,
    JointTeamView,
    NoSuchJointCase,
    view_of,
)
from services.collaboration.letters import NotInNetwork, utc_now
from services.collaboration.store import idempotency, joint_cases
from services.collaboration.store.joint_cases import JointCaseRow
from services.collaboration.store.network import current_network
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import bounded_text, page_size
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.grpc.paging import decode_page_token, encode_page_token
from services.runtime.tokens import Principal

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
SHARE_FIELDS = ("own_share", "partner_share", "first_share", "second_share")


def _leadership_of(county_id: str) -> str:
    principal = current_principal()
    if principal.roles.isdisjoint(policy.LEADERSHIP):
        raise PermissionDenied(f"{principal.subject} may not act on joint cases (leadership)")
    if not principal.can_see_county(county_id):
        raise PermissionDenied(f"{principal.subject} does not speak for this county")
    return principal.subject


def _reader_of(county_id: str, network: Network | None) -> Principal:
    """County leadership reads its county's side; the city commission the city's own trail."""
    principal = current_principal()
    if network is not None and county_id == network.city_id:
        if not policy.is_city_commission(principal, network.city_id):
            raise PermissionDenied(f"{principal.subject} does not speak for the city commission")
        return principal
    _leadership_of(county_id)
    return principal


def _message(seen: JointTeamView) -> pb.JointCase:
    return pb.JointCase(
        joint_id=seen.joint_id,
        county_id=seen.county_id,
        partner_county_id=seen.other_county,
        role=seen.role,
        state=seen.state,
        case_id=seen.case_id or "",
        own_member_ids=seen.own_members,
        partner_member_ids=seen.other_members,
        kind=seen.kind or "",
        own_share=seen.own_share,
        partner_share=seen.other_share,
        opened_by=seen.opened_by or "",
        partner_joined=seen.other_joined,
        second_county_id=seen.second_county or "",
        decline_ground=seen.decline_ground or "",
        outcome=seen.outcome or "",
        closed_by=seen.closed_by or "",
        closed_at=seen.closed_at.isoformat() if seen.closed_at else "",
    )


def _kind(value: str, violations: list[FieldViolation]) -> JointKind | None:
    try:
        return JointKind(value)
    except ValueError:
        listed = ", ".join(k.value for k in JointKind)
        violations.append(FieldViolation("kind", f"must be one of {listed}"))
        return None


def _shares(request: Any, violations: list[FieldViolation]) -> None:
    for name in SHARE_FIELDS:
        if hasattr(request, name) and getattr(request, name) < 0:
            violations.append(FieldViolation(name, "must not be negative (0: the kind's default)"))


async def _network(session: AsyncSession) -> Network:
    network = await current_network(session)
    if network is None:
        raise FailedPrecondition("no network file imported", kind="NETWORK")
    return network


class JointCaseServicer(pb_grpc.JointCaseServiceServicer):
    """Joint cases of the counties (and the city) this deployment holds keys for."""

    def __init__(self, database: Database, desk: JointCaseDesk) -> None:
        self._db = database
        self._desk = desk

    async def _once(
        self,
        session: AsyncSession,
        *,
        subject: str,
        owner: str,
        call: str,
        key: str,
        fields: dict[str, Any],
        act: Callable[[], Awaitable[JointCaseRow]],
    ) -> JointCaseRow:
        """Run `act` once per idempotency key; a repeat returns the joint case as it is now."""
        fingerprint = idempotency.fingerprint(fields)
        try:
            earlier = await idempotency.earlier_result(
                session, subject=subject, call=call, key=key, request_print=fingerprint
            )
        except idempotency.KeyReused as reused:
            raise InvalidArgument([FieldViolation("idempotency_key", str(reused))]) from reused
        if earlier is not None:
            row = await joint_cases.get(session, owner, earlier)
            if row is not None:
                return row
        try:
            row = await act()
        except JointCaseRefused as refused:
            raise InvalidArgument([FieldViolation(refused.field, str(refused))]) from refused
        except NotInNetwork as refused:
            raise FailedPrecondition(str(refused)) from refused
        idempotency.remember(
            session,
            subject=subject,
            call=call,
            key=key,
            request_print=fingerprint,
            result_id=row.joint_id,
            at=utc_now(),
        )
        return row

    async def OpenJointCase(
        self, request: pb.OpenJointCaseRequest, context: Context
    ) -> pb.OpenJointCaseResponse:
        """County leadership opens a joint case of a kind with another county."""
        violations: list[FieldViolation] = []
        for name in (
            "idempotency_key",
            "county_id",
            "partner_county_id",
            "case_id",
            "subject_township_id",
        ):
            bounded_text(getattr(request, name), name, violations, required=True)
        kind = _kind(request.kind, violations)
        _shares(request, violations)
        if violations or kind is None:
            raise InvalidArgument(violations)
        actor = _leadership_of(request.county_id)
        async with self._db.transaction() as session:
            network = await _network(session)
            row = await self._once(
                session,
                subject=actor,
                owner=request.county_id,
                call="OpenJointCase",
                key=request.idempotency_key,
                fields={
                    name: getattr(request, name)
                    for name in (
                        "county_id",
                        "partner_county_id",
                        "case_id",
                        "subject_township_id",
                        "kind",
                        "own_share",
                        "partner_share",
                    )
                },
                act=lambda: self._desk.open(
                    session,
                    network,
                    actor=actor,
                    county_id=request.county_id,
                    partner_county=request.partner_county_id,
                    case_id=request.case_id,
                    subject_township_id=request.subject_township_id,
                    kind=kind,
                    own_share=request.own_share,
                    partner_share=request.partner_share,
                    now=utc_now(),
                ),
            )
            seen = view_of(row)
        return pb.OpenJointCaseResponse(joint_case=_message(seen))

    async def OpenCityJointCase(
        self, request: pb.OpenCityJointCaseRequest, context: Context
    ) -> pb.OpenCityJointCaseResponse:
        """The city commission opens a joint case between two member counties."""
        violations: list[FieldViolation] = []
        for name in ("idempotency_key", "city_id", "first_county_id", "second_county_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        kind = _kind(request.kind, violations)
        _shares(request, violations)
        if violations or kind is None:
            raise InvalidArgument(violations)
        principal = current_principal()
        async with self._db.transaction() as session:
            network = await _network(session)
            if request.city_id != network.city_id or not policy.is_city_commission(
                principal, network.city_id
            ):
                raise PermissionDenied(
                    f"{principal.subject} may not open joint cases for the city commission"
                )
            row = await self._once(
                session,
                subject=principal.subject,
                owner=network.city_id,
                call="OpenCityJointCase",
                key=request.idempotency_key,
                fields={
                    name: getattr(request, name)
                    for name in (
                        "first_county_id",
                        "second_county_id",
                        "kind",
                        "first_share",
                        "second_share",
                    )
                },
                act=lambda: self._desk.open_by_city(
                    session,
                    network,
                    actor=principal.subject,
                    first=request.first_county_id,
                    second=request.second_county_id,
                    kind=kind,
                    first_share=request.first_share,
                    second_share=request.second_share,
                    now=utc_now(),
                ),
            )
            seen = view_of(row)
        return pb.OpenCityJointCaseResponse(joint_case=_message(seen))

    async def _step(
        self,
        county_id: str,
        joint_id: str,
        act: Callable[[AsyncSession, Network, str], Awaitable[JointCaseRow]],
    ) -> pb.JointCase:
        actor = _leadership_of(county_id)
        async with self._db.transaction() as session:
            network = await _network(session)
            try:
                row = await act(session, network, actor)
            except NoSuchJointCase as missing:
                raise NotFound("joint case", joint_id) from missing
            except JointCaseRefused as refused:
                raise FailedPrecondition(str(refused)) from refused
            except NotInNetwork as refused:
                raise FailedPrecondition(str(refused)) from refused
            return _message(view_of(row))

    async def AcceptJointCase(
        self, request: pb.AcceptJointCaseRequest, context: Context
    ) -> pb.AcceptJointCaseResponse:
        """A county asked to join does, naming its own case and township."""
        violations: list[FieldViolation] = []
        for name in ("joint_id", "county_id", "case_id", "subject_township_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        if violations:
            raise InvalidArgument(violations)
        joint = await self._step(
            request.county_id,
            request.joint_id,
            lambda session, network, actor: self._desk.accept(
                session,
                network,
                actor=actor,
                county_id=request.county_id,
                joint_id=request.joint_id,
                case_id=request.case_id,
                subject_township_id=request.subject_township_id,
                now=utc_now(),
            ),
        )
        return pb.AcceptJointCaseResponse(joint_case=joint)

    async def DeclineJointCase(
        self, request: pb.DeclineJointCaseRequest, context: Context
    ) -> pb.DeclineJointCaseResponse:
        """A county asked to join declines, with a ground."""
        violations: list[FieldViolation] = []
        for name in ("joint_id", "county_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        bounded_text(request.ground, "ground", violations, required=True, max_length=GROUND_MAX)
        if violations:
            raise InvalidArgument(violations)
        joint = await self._step(
            request.county_id,
            request.joint_id,
            lambda session, network, actor: self._desk.decline(
                session,
                network,
                actor=actor,
                county_id=request.county_id,
                joint_id=request.joint_id,
                ground=request.ground,
                now=utc_now(),
            ),
        )
        return pb.DeclineJointCaseResponse(joint_case=joint)

    async def CloseJointCase(
        self, request: pb.CloseJointCaseRequest, context: Context
    ) -> pb.CloseJointCaseResponse:
        """Either county's leadership closes the joint case with an outcome."""
        violations: list[FieldViolation] = []
        for name in ("joint_id", "county_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        try:
            outcome = JointOutcome(request.outcome)
        except ValueError:
            listed = ", ".join(o.value for o in JointOutcome)
            violations.append(FieldViolation("outcome", f"must be one of {listed}"))
        if violations:
            raise InvalidArgument(violations)
        joint = await self._step(
            request.county_id,
            request.joint_id,
            lambda session, network, actor: self._desk.close(
                session,
                network,
                actor=actor,
                county_id=request.county_id,
                joint_id=request.joint_id,
                outcome=outcome,
                now=utc_now(),
            ),
        )
        return pb.CloseJointCaseResponse(joint_case=joint)

    async def GetJointCase(
        self, request: pb.GetJointCaseRequest, context: Context
    ) -> pb.GetJointCaseResponse:
        """The joint case as the caller's county sees it: whole team, own case id only."""
        violations: list[FieldViolation] = []
        for name in ("joint_id", "county_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        if violations:
            raise InvalidArgument(violations)
        async with self._db.session() as session:
            _reader_of(request.county_id, await current_network(session))
            row = await joint_cases.get(session, request.county_id, request.joint_id)
        if row is None:
            raise NotFound("joint case", request.joint_id)
        return pb.GetJointCaseResponse(joint_case=_message(view_of(row)))

    async def ListJointCases(
        self, request: pb.ListJointCasesRequest, context: Context
    ) -> pb.ListJointCasesResponse:
        """A county's joint cases by id (or the city's), a page at a time."""
        violations: list[FieldViolation] = []
        bounded_text(request.county_id, "county_id", violations, required=True)
        size = page_size(request.page_size, violations, maximum=200, default=50)
        states = {s.value for s in State}
        if request.state and request.state not in states:
            violations.append(
                FieldViolation("state", f"must be one of {', '.join(sorted(states))}")
            )
        query = {"county_id": request.county_id, "state": request.state}
        after = ""
        if request.page_token:
            try:
                after = decode_page_token(request.page_token, query)
            except ValueError as refused:
                violations.append(FieldViolation("page_token", str(refused)))
        if violations:
            raise InvalidArgument(violations)
        async with self._db.session() as session:
            _reader_of(request.county_id, await current_network(session))
            rows = await joint_cases.page(
                session, request.county_id, after=after, limit=size + 1, state=request.state
            )
        more = len(rows) > size
        rows = rows[:size]
        next_token = encode_page_token(rows[-1].joint_id, query) if more and rows else ""
        return pb.ListJointCasesResponse(
            joint_cases=[_message(view_of(row)) for row in rows], next_page_token=next_token
        )
