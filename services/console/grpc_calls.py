"""Calling the services as the signed-in user: their own token, their refusals mapped to pages.

The console decides nothing: every read and action is a gRPC call carrying the user's token,
so each service's policy, visibility rules and audit apply unchanged. Usage in a page:

    reply = await call(request, stubs(request).cases.GetCase, GetCaseRequest(case_id=case_id))

A refusal becomes: UNAUTHENTICATED → back to sign-in; PERMISSION_DENIED → 403 page;
NOT_FOUND → 404 page; UNAVAILABLE/DEADLINE_EXCEEDED → 503 page; INVALID_ARGUMENT,
FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED → `Refused` (catch it to show inline form errors).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from opentelemetry import propagate
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response
from xiezuo.assessment.v1 import assessment_pb2_grpc
from xiezuo.cases.v1 import cases_pb2_grpc
from xiezuo.collaboration.v1 import (
    collaboration_pb2_grpc,
    joint_cases_pb2_grpc,
    transfers_pb2_grpc,
)
from xiezuo.intake.v1 import intake_pb2_grpc
from xiezuo.staffing.v1 import registry_pb2_grpc, staffing_pb2_grpc, training_pb2_grpc

from services.console.session import SignedIn, SignInRequired, signed_in
from services.runtime.grpc.errors import field_violations

T = TypeVar("T")
# Codes that mean "this request, as made, was refused": the form shows why, nothing changed.
_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
}


class Refused(Exception):
    """The service refused the request; `violations` maps a field path to what is wrong."""

    def __init__(self, status: int, message: str, violations: Mapping[str, list[str]]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.violations: dict[str, list[str]] = dict(violations)


@dataclass
class Stubs:
    """One stub per gRPC service, over the console's long-lived channels (one per service)."""

    channels: Mapping[str, grpc.aio.Channel]
    intake: intake_pb2_grpc.IntakeServiceStub = field(init=False)
    cases: cases_pb2_grpc.CaseServiceStub = field(init=False)
    staffing: staffing_pb2_grpc.StaffingServiceStub = field(init=False)
    registry: registry_pb2_grpc.RegistryServiceStub = field(init=False)
    training: training_pb2_grpc.TrainingServiceStub = field(init=False)
    assessment: assessment_pb2_grpc.AssessmentServiceStub = field(init=False)
    collaboration: collaboration_pb2_grpc.CollaborationServiceStub = field(init=False)
    joint_cases: joint_cases_pb2_grpc.JointCaseServiceStub = field(init=False)
    transfers: transfers_pb2_grpc.TransferServiceStub = field(init=False)

    def __post_init__(self) -> None:
        c = self.channels
        self.intake = intake_pb2_grpc.IntakeServiceStub(c["intake"])
        self.cases = cases_pb2_grpc.CaseServiceStub(c["cases"])
        self.staffing = staffing_pb2_grpc.StaffingServiceStub(c["staffing"])
        self.registry = registry_pb2_grpc.RegistryServiceStub(c["staffing"])
        self.training = training_pb2_grpc.TrainingServiceStub(c["staffing"])
        self.assessment = assessment_pb2_grpc.AssessmentServiceStub(c["assessment"])
        self.collaboration = collaboration_pb2_grpc.CollaborationServiceStub(c["collaboration"])
        self.joint_cases = joint_cases_pb2_grpc.JointCaseServiceStub(c["collaboration"])
        self.transfers = transfers_pb2_grpc.TransferServiceStub(c["collaboration"])


def stubs(connection: HTTPConnection) -> Stubs:
    """The console's stubs (built once by the composition root)."""
    found: Stubs = connection.app.state.stubs
    return found


def metadata_for(user: SignedIn) -> tuple[tuple[str, str], ...]:
    """The call metadata: the user's bearer token and the current trace context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (("authorization", f"Bearer {user.token}"), *sorted(carrier.items()))


async def call(
    connection: HTTPConnection,
    method: Callable[..., Awaitable[T]],
    message: Any,
    *,
    seconds: float | None = None,
) -> T:
    """Call `method(message)` as the signed-in user; refusals raised as described above."""
    user = signed_in(connection)
    if seconds is None:
        seconds = connection.app.state.settings.grpc_timeout_seconds
    try:
        return await method(message, metadata=metadata_for(user), timeout=seconds)
    except grpc.aio.AioRpcError as error:
        raise translate(error) from error


async def act(
    connection: HTTPConnection,
    method: Callable[..., Awaitable[Any]],
    message: Any,
    *,
    done: str,
    again: Callable[[Refused | None], Awaitable[Response]],
) -> Response:
    """Send one form's action as the user, then go to `done`; when the service refuses it,
    `again(refusal)` re-renders the form with its reasons (`None`: PERMISSION_DENIED)."""
    try:
        await call(connection, method, message)
    except Refused as refusal:
        return await again(refusal)
    except HTTPException as error:
        if error.status_code != 403:
            raise
        return await again(None)
    return RedirectResponse(done, status_code=303)


def translate(error: grpc.aio.AioRpcError) -> Exception:
    """The exception a page (or the app's handlers) deals with for a gRPC failure."""
    code, details = error.code(), error.details() or ""
    if code is grpc.StatusCode.UNAUTHENTICATED:
        # The token expired or its key was rotated out: a fresh sign-in mints a new one.
        return SignInRequired()
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return HTTPException(403, details)
    if code is grpc.StatusCode.NOT_FOUND:
        return HTTPException(404, details)
    if code in _REFUSALS:
        violations: dict[str, list[str]] = {}
        for path, description in field_violations(error):
            violations.setdefault(path, []).append(description)
        return Refused(_REFUSALS[code], details, violations)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return HTTPException(503, code.name)
    return HTTPException(502, f"{code.name}: {details}")
