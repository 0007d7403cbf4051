"""gRPC face of joint investigations (联合审查调查): open, join, and each county's view."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from xiezuo.collaboration.v1 import joint_cases_pb2 as pb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc as pb_grpc

from services.collaboration import joint_cases
from services.collaboration.api import policy
from services.collaboration.joint_cases import JointCaseDesk, JointCaseRefused, JointTeamView
from services.collaboration.letters import NotInNetwork, utc_now
from services.collaboration.store.network import current_network
from services.runtime.db import Database
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import bounded_text
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _leadership_of(county_id: str) -> str:
    principal = current_principal()
    if principal.roles.isdisjoint(policy.LEADERSHIP):
        raise PermissionDenied(f"{principal.subject} may not act on joint cases (leadership)")
    if not principal.can_see_county(county_id):
        raise PermissionDenied(f"{principal.subject} does not speak for this county")
    return principal.subject


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
    )


class JointCaseServicer(pb_grpc.JointCaseServiceServicer):
    """Joint cases of the counties this deployment holds keys for."""

    def __init__(self, database: Database, desk: JointCaseDesk) -> None:
        self._db = database
        self._desk = desk

    async def OpenJointCase(
        self, request: pb.OpenJointCaseRequest, context: Context
    ) -> pb.OpenJointCaseResponse:
        """County leadership opens a joint case with another county."""
        violations: list[FieldViolation] = []
        for name in ("county_id", "partner_county_id", "case_id", "subject_township_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        if violations:
            raise InvalidArgument(violations)
        actor = _leadership_of(request.county_id)
        async with self._db.transaction() as session:
            network = await current_network(session)
            if network is None:
                raise FailedPrecondition("no network file imported", kind="NETWORK")
            try:
                row = await self._desk.open(
                    session,
                    network,
                    actor=actor,
                    county_id=request.county_id,
                    partner_county=request.partner_county_id,
                    case_id=request.case_id,
                    subject_township_id=request.subject_township_id,
                    now=utc_now(),
                )
            except JointCaseRefused as refused:
                raise InvalidArgument(
                    [FieldViolation("partner_county_id", str(refused))]
                ) from refused
            except NotInNetwork as refused:
                raise FailedPrecondition(str(refused)) from refused
            seen = await joint_cases.view(session, row.county_id, row.joint_id)
        assert seen is not None
        return pb.OpenJointCaseResponse(joint_case=_message(seen))

    async def AcceptJointCase(
        self, request: pb.AcceptJointCaseRequest, context: Context
    ) -> pb.AcceptJointCaseResponse:
        """The partner county's leadership joins, naming its own case and township."""
        violations: list[FieldViolation] = []
        for name in ("joint_id", "county_id", "case_id", "subject_township_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        if violations:
            raise InvalidArgument(violations)
        actor = _leadership_of(request.county_id)
        async with self._db.transaction() as session:
            network = await current_network(session)
            if network is None:
                raise FailedPrecondition("no network file imported", kind="NETWORK")
            try:
                await self._desk.accept(
                    session,
                    network,
                    actor=actor,
                    county_id=request.county_id,
                    joint_id=request.joint_id,
                    case_id=request.case_id,
                    subject_township_id=request.subject_township_id,
                    now=utc_now(),
                )
            except JointCaseRefused as refused:
                raise FailedPrecondition(str(refused)) from refused
            except NotInNetwork as refused:
                raise FailedPrecondition(str(refused)) from refused
            seen = await joint_cases.view(session, request.county_id, request.joint_id)
        assert seen is not None
        return pb.AcceptJointCaseResponse(joint_case=_message(seen))

    async def GetJointCase(
        self, request: pb.GetJointCaseRequest, context: Context
    ) -> pb.GetJointCaseResponse:
        """The joint case as the caller's county sees it: whole team, own case id only."""
        violations: list[FieldViolation] = []
        for name in ("joint_id", "county_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        if violations:
            raise InvalidArgument(violations)
        _leadership_of(request.county_id)
        async with self._db.session() as session:
            seen = await joint_cases.view(session, request.county_id, request.joint_id)
        if seen is None:
            raise NotFound("joint case", request.joint_id)
        return pb.GetJointCaseResponse(joint_case=_message(seen))
