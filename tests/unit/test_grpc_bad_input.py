"""The gRPC runtime's answers to bad input and to bugs: precise statuses, short messages.

Real channels on 127.0.0.1: out-of-range Timestamps, huge ids, malformed bearer tokens,
unexpected exceptions (INTERNAL with a correlation id), rich details and v1 reflection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.runtime.grpc import (
    FailedPrecondition,
    GrpcEndpoint,
    NotFound,
    PermissionDenied,
    field_violations,
    require,
    status_of,
)
from services.runtime.grpc.conversion import (
    moment,
    offset_from_token,
    offset_token,
    request_violations,
)
from services.runtime.grpc.errors import FieldViolation, InvalidArgument
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier

ISSUER, AUDIENCE = "xiezuo-test", "xiezuo"
INTAKE = "xiezuo.intake.v1.IntakeService"
ALICE = Principal("alice", frozenset({"intake_officer"}), "c1", ("z1",))
SECRET = "the reporter's own words"


@dataclass
class Steered(intake_pb2_grpc.IntakeServiceServicer):
    """SubmitReport does what `content` says: fail with a bug, miss, refuse, or succeed."""

    calls: list[str] = field(default_factory=list)

    async def SubmitReport(
        self, request: intake_pb2.SubmitReportRequest, context: Any
    ) -> intake_pb2.SubmitReportResponse:
        self.calls.append(request.content)
        if request.content == "bug":
            raise RuntimeError(SECRET)
        if request.content == "missing":
            raise NotFound("clue", request.idempotency_key)
        if request.content == "late":
            raise FailedPrecondition("the case is closed", subject=request.idempotency_key)
        return intake_pb2.SubmitReportResponse(report_id="r1", clue_id="k1")


@dataclass
class Harness:
    servicer: Steered
    issuer: TokenIssuer
    channel: grpc.aio.Channel

    @property
    def intake(self) -> Any:
        return intake_pb2_grpc.IntakeServiceStub(self.channel)

    def bearer(self, token: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token or self.issuer.issue(ALICE)}"),)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    servicer = Steered()  # type: ignore[abstract]  # unused methods answer UNIMPLEMENTED
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=[INTAKE],
        register=lambda server: intake_pb2_grpc.add_IntakeServiceServicer_to_server(
            servicer, server
        ),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
    )
    port = await endpoint.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Harness(servicer, TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE), channel)
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


async def _rejection(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _stamp(seconds: int = 0, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(0, 1_000_000_000), (0, -1), (-62_135_596_801, 0), (253_402_300_800, 0)],
)
async def test_out_of_range_timestamps_are_invalid_arguments_naming_the_field(
    harness: Harness, seconds: int, nanos: int
) -> None:
    request = intake_pb2.SubmitReportRequest(
        content="ok",
        received_at=_stamp(seconds, nanos),
        phone=intake_pb2.PhoneDetails(called_at=_stamp(seconds, nanos)),
    )
    error = await _rejection(harness.intake.SubmitReport(request, metadata=harness.bearer()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(f for f, _ in field_violations(error)) == ["phone.called_at", "received_at"]
    assert harness.servicer.calls == []


async def test_the_timestamp_range_edges_are_accepted(harness: Harness) -> None:
    for seconds, nanos in [(-62_135_596_800, 0), (253_402_300_799, 999_999_999)]:
        request = intake_pb2.SubmitReportRequest(content="ok", received_at=_stamp(seconds, nanos))
        await harness.intake.SubmitReport(request, metadata=harness.bearer())
    assert harness.servicer.calls == ["ok", "ok"]


async def test_an_unexpected_exception_is_internal_with_a_correlation_id(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    request = intake_pb2.SubmitReportRequest(content="bug")
    with caplog.at_level(logging.ERROR, logger="xiezuo.grpc"):
        error = await _rejection(harness.intake.SubmitReport(request, metadata=harness.bearer()))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details().startswith("internal error; correlation id ")
    correlation_id = error.details().rsplit(" ", 1)[1]
    logged = [r for r in caplog.records if r.name == "xiezuo.grpc"]
    assert len(logged) == 1
    text = logged[0].getMessage()
    assert correlation_id in text and "trace id" in text and "RuntimeError" in text
    assert SECRET not in text and SECRET not in error.details()


async def test_not_found_is_short_and_carries_resource_info(harness: Harness) -> None:
    huge = "x" * 1_000_000
    request = intake_pb2.SubmitReportRequest(content="missing", idempotency_key=huge)
    error = await _rejection(harness.intake.SubmitReport(request, metadata=harness.bearer()))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert len(error.details()) < 200
    status = status_of(error)
    assert status is not None
    info = error_details_pb2.ResourceInfo()
    assert status.details[0].Unpack(info)
    assert info.resource_type == "clue"
    assert info.resource_name == "x" * 64 + "…"


async def test_failed_precondition_carries_precondition_failure(harness: Harness) -> None:
    request = intake_pb2.SubmitReportRequest(content="late", idempotency_key="k-7")
    error = await _rejection(harness.intake.SubmitReport(request, metadata=harness.bearer()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = status_of(error)
    assert status is not None
    failure = error_details_pb2.PreconditionFailure()
    assert status.details[0].Unpack(failure)
    [violation] = failure.violations
    assert (violation.type, violation.subject, violation.description) == (
        "STATE",
        "k-7",
        "the case is closed",
    )


@pytest.mark.parametrize("token", ["__79.e30.c2ln", "a.b", "...."])
async def test_a_malformed_bearer_token_is_a_clean_unauthenticated(
    harness: Harness, token: str
) -> None:
    request = intake_pb2.SubmitReportRequest(content="ok")
    error = await _rejection(harness.intake.SubmitReport(request, metadata=harness.bearer(token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "unauthenticated: malformed token: not a signed JWT"


async def test_reflection_answers_under_v1_with_file_descriptors(harness: Harness) -> None:
    call = harness.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )()
    await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol=INTAKE))
    response = await call.read()
    await call.done_writing()
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    assert response.file_descriptor_response.file_descriptor_proto


async def test_reflection_resolves_every_method_name_to_its_file(harness: Harness) -> None:
    """What `grpcurl describe pkg.Service.Method` asks; the C descriptor pool cannot say."""
    call = harness.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )()
    methods = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].methods
    for method in methods:
        await call.write(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=method.full_name)
        )
        response = await call.read()
        assert response.WhichOneof("message_response") == "file_descriptor_response", method
    await call.write(
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=f"{INTAKE}.NoSuchMethod")
    )
    missing = await call.read()
    assert missing.WhichOneof("message_response") == "error_response"
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    listed = await call.read()
    await call.done_writing()
    names = {service.name for service in listed.list_services_response.service}
    assert {
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names
    assert len(methods) > 5


async def test_text_with_a_nul_character_is_refused_before_the_servicer(harness: Harness) -> None:
    request = intake_pb2.SubmitReportRequest(content="ok", allegation_categories=["a", "b\x00"])
    error = await _rejection(harness.intake.SubmitReport(request, metadata=harness.bearer()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["allegation_categories[1]"]
    assert harness.servicer.calls == []


def test_conversion_refuses_bad_stamps_and_tokens_with_field_paths() -> None:
    with pytest.raises(InvalidArgument) as caught:
        moment(_stamp(nanos=1_000_000_000), "effective_at")
    assert [v.field for v in caught.value.violations] == ["effective_at"]
    nested = intake_pb2.SubmitReportRequest(phone=intake_pb2.PhoneDetails(called_at=_stamp(0, -5)))
    assert [v.field for v in request_violations(nested)] == ["phone.called_at"]
    violations: list[FieldViolation] = []
    assert offset_from_token("9" * 100, {"q": 1}, violations) == 0
    assert offset_from_token(offset_token(7, {"q": 1}), {"q": 2}, violations) == 0
    assert offset_from_token(offset_token(7, {"q": 1}), {"q": 1}, violations) == 7
    assert [v.field for v in violations] == ["page_token", "page_token"]


def test_refusals_echo_a_callers_values_cut_short() -> None:
    with pytest.raises(PermissionDenied) as denied:
        require(ALICE, roles={"intake_officer"}, county_id="c" * 100_000)
    assert len(denied.value.message) < 200
    assert len(FailedPrecondition("y" * 100_000).message) <= 1025
    violation = InvalidArgument([FieldViolation("content", "z" * 100_000)])
    assert len(violation.message) <= 1025
