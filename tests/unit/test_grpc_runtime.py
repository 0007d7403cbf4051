"""The gRPC runtime over real channels on 127.0.0.1: auth, health, reflection, errors, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.runtime.grpc import (
    FieldViolation,
    GrpcEndpoint,
    InvalidArgument,
    NoPrincipal,
    NotFound,
    PermissionDenied,
    current_principal,
    field_violations,
    maps_errors,
    require,
    status_of,
)
from services.runtime.grpc.metrics import CallMetricsInterceptor
from services.runtime.tokens import Principal, TokenIssuer, TokenVerifier

ISSUER = "xiezuo-test"
AUDIENCE = "xiezuo"
INTAKE = "xiezuo.intake.v1.IntakeService"
ECHO_METHOD = "/xiezuo.test.Echo/WhoAmI"
ALICE = Principal(
    subject="alice", roles=frozenset({"intake_officer"}), county_id="c1", zone_ids=("z1",)
)


def _keypair() -> tuple[str, str]:
    """A fresh Ed25519 (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class FakeIntake(intake_pb2_grpc.IntakeServiceServicer):
    """Records who called; `content` steers it to fail, deny or hang until released."""

    seen: list[Principal] = field(default_factory=list)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def SubmitReport(
        self, request: intake_pb2.SubmitReportRequest, context: Any
    ) -> intake_pb2.SubmitReportResponse:
        principal = current_principal()
        self.seen.append(principal)
        violations = [
            FieldViolation(name, "is required")
            for name in ("idempotency_key", "content")
            if not getattr(request, name)
        ]
        if violations:
            raise InvalidArgument(violations)
        require(
            principal,
            roles={"intake_officer"},
            county_id=request.county_id,
            zone_id=request.zone_id,
        )
        if request.content == "slow":
            self.entered.set()
            await self.release.wait()
        return intake_pb2.SubmitReportResponse(report_id=f"r-{principal.subject}", clue_id="k1")


async def _who_am_i(request: bytes, context: Any) -> AsyncIterator[bytes]:
    """A response-streaming method: yields the caller twice, or raises NotFound."""
    if request == b"missing":
        raise NotFound("thing")
    for _ in range(2):
        yield current_principal().subject.encode()


def _register(fake: FakeIntake) -> Any:
    def register(server: grpc.aio.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(fake, server)
        echo = grpc.method_handlers_generic_handler(
            "xiezuo.test.Echo", {"WhoAmI": grpc.unary_stream_rpc_method_handler(_who_am_i)}
        )
        server.add_generic_rpc_handlers((echo,))

    return register


@dataclass
class Harness:
    endpoint: GrpcEndpoint
    fake: FakeIntake
    issuer: TokenIssuer
    private_pem: str
    channel: grpc.aio.Channel
    spans: InMemorySpanExporter
    # (method, code) of every finished call, as the metrics interceptor reports them.
    calls: list[tuple[str, str]]

    @property
    def intake(self) -> Any:
        return intake_pb2_grpc.IntakeServiceStub(self.channel)

    def bearer(self, token: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token or self.issuer.issue(ALICE)}"),)


@pytest.fixture
def keys() -> tuple[str, str]:
    return _keypair()


@pytest.fixture
async def harness(keys: tuple[str, str]) -> AsyncIterator[Harness]:
    private, public = keys
    fake = FakeIntake()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    calls: list[tuple[str, str]] = []
    endpoint = GrpcEndpoint(
        address="127.0.0.1:0",
        service_names=[INTAKE],
        register=_register(fake),
        verifier=TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE),
        tracer_provider=tracer_provider,
        interceptors=[CallMetricsInterceptor(lambda method, code, _: calls.append((method, code)))],
    )
    port = await endpoint.start()
    assert port > 0 and endpoint.port == port
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        issuer = TokenIssuer(private, issuer=ISSUER, audience=AUDIENCE)
        yield Harness(endpoint, fake, issuer, private, channel, spans, calls)
    finally:
        await channel.close()
        await endpoint.stop(grace=0)


def _request(**overrides: Any) -> intake_pb2.SubmitReportRequest:
    fields: dict[str, Any] = {
        "idempotency_key": "k-1",
        "county_id": "c1",
        "zone_id": "z1",
        "township_id": "t1",
        "channel": intake_pb2.REPORT_CHANNEL_LETTER,
        "content": "the village head sold the collective's land",
    }
    fields.update(overrides)
    return intake_pb2.SubmitReportRequest(**fields)


async def _rejection(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_valid_token_reaches_the_servicer_as_principal(harness: Harness) -> None:
    response = await harness.intake.SubmitReport(_request(), metadata=harness.bearer())
    assert response.report_id == "r-alice"
    assert harness.fake.seen == [ALICE]


async def test_principal_does_not_leak_out_of_the_call(harness: Harness) -> None:
    await harness.intake.SubmitReport(_request(), metadata=harness.bearer())
    with pytest.raises(NoPrincipal):
        current_principal()


async def test_missing_token_is_unauthenticated(harness: Harness) -> None:
    error = await _rejection(harness.intake.SubmitReport(_request()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing 'authorization: Bearer <token>'" in (error.details() or "")
    assert harness.fake.seen == []


async def test_refused_and_accepted_calls_are_both_counted(harness: Harness) -> None:
    await _rejection(harness.intake.SubmitReport(_request()))
    await harness.intake.SubmitReport(_request(), metadata=harness.bearer())
    method = "/xiezuo.intake.v1.IntakeService/SubmitReport"
    assert harness.calls == [(method, "UNAUTHENTICATED"), (method, "OK")]


async def test_non_bearer_authorization_is_unauthenticated(harness: Harness) -> None:
    metadata = (("authorization", "Basic YWxpY2U6c2VjcmV0"),)
    error = await _rejection(harness.intake.SubmitReport(_request(), metadata=metadata))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not 'Bearer <token>'" in (error.details() or "")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("expired", "token has expired"),
        ("wrong key", "token signature does not match any trusted key"),
        ("wrong audience", "token audience is not 'xiezuo'"),
    ],
)
async def test_bad_tokens_are_unauthenticated(harness: Harness, kind: str, reason: str) -> None:
    if kind == "expired":
        token = harness.issuer.issue(ALICE, now=datetime.now(UTC) - timedelta(hours=2))
    elif kind == "wrong key":
        token = TokenIssuer(_keypair()[0], issuer=ISSUER, audience=AUDIENCE).issue(ALICE)
    else:
        token = TokenIssuer(harness.private_pem, issuer=ISSUER, audience="other").issue(ALICE)
    error = await _rejection(
        harness.intake.SubmitReport(_request(), metadata=harness.bearer(token))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == f"unauthenticated: {reason}"
    assert harness.fake.seen == []


async def test_calls_are_traced_including_rejected_ones(harness: Harness) -> None:
    await harness.intake.SubmitReport(_request(), metadata=harness.bearer())
    await _rejection(harness.intake.SubmitReport(_request()))
    method = f"/{INTAKE}/SubmitReport"
    # The server ends a call's span after the client has its answer: wait for both to finish.
    for _ in range(100):
        traced = [s for s in harness.spans.get_finished_spans() if s.name == method]
        if len(traced) >= 2:
            break
        await asyncio.sleep(0.05)
    codes = [(s.attributes or {}).get("rpc.grpc.status_code") for s in traced]
    # OTel semconv leaves server spans of client-fault codes UNSET; the code is the record.
    assert codes == [grpc.StatusCode.OK.value[0], grpc.StatusCode.UNAUTHENTICATED.value[0]]


async def test_health_answers_without_a_token(harness: Harness) -> None:
    stub = health_pb2_grpc.HealthStub(harness.channel)
    for service in ("", INTAKE):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    # Watch writes with context.write; it must survive the interceptor chain too.
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=INTAKE))
    first = await watch.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()


async def test_reflection_lists_the_services_without_a_token(harness: Harness) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(harness.channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    names = {s.name for s in response.list_services_response.service}
    assert {INTAKE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


async def test_invalid_argument_carries_field_violations(harness: Harness) -> None:
    call = harness.intake.SubmitReport(
        _request(idempotency_key="", content=""), metadata=harness.bearer()
    )
    error = await _rejection(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == [
        ("idempotency_key", "is required"),
        ("content", "is required"),
    ]
    status = status_of(error)
    assert status is not None and status.message == error.details()


async def test_require_denies_out_of_scope_requests(harness: Harness) -> None:
    call = harness.intake.SubmitReport(_request(zone_id="z9"), metadata=harness.bearer())
    error = await _rejection(call)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "permission denied: alice is not scoped to zone 'z9' of county 'c1'"
    assert field_violations(error) == []


async def test_streaming_handlers_see_the_principal_and_map_errors(harness: Harness) -> None:
    who_am_i = harness.channel.unary_stream(ECHO_METHOD)
    replies = [r async for r in who_am_i(b"", metadata=harness.bearer())]
    assert replies == [b"alice", b"alice"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [r async for r in who_am_i(b"missing", metadata=harness.bearer())]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "thing not found"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [r async for r in who_am_i(b"")]
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_graceful_stop_finishes_in_flight_calls(harness: Harness) -> None:
    health_stub = health_pb2_grpc.HealthStub(harness.channel)
    in_flight = asyncio.ensure_future(
        harness.intake.SubmitReport(_request(content="slow"), metadata=harness.bearer())
    )
    await asyncio.wait_for(harness.fake.entered.wait(), timeout=5)
    stopping = asyncio.ensure_future(harness.endpoint.stop(grace=10, drain=0.3))
    await asyncio.sleep(0.1)
    # During the drain the server still answers, but reports NOT_SERVING to balancers.
    status = await health_stub.Check(health_pb2.HealthCheckRequest(service=INTAKE))
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await asyncio.sleep(0.4)
    assert not in_flight.done() and not stopping.done()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{harness.endpoint.port}") as fresh:
        refused = await _rejection(
            intake_pb2_grpc.IntakeServiceStub(fresh).SubmitReport(
                _request(), metadata=harness.bearer(), timeout=5
            )
        )
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    harness.fake.release.set()
    response = await asyncio.wait_for(in_flight, timeout=5)
    assert response.report_id == "r-alice"
    await asyncio.wait_for(stopping, timeout=5)


@dataclass
class _AbortingContext:
    aborted: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)

    async def abort(self, code: grpc.StatusCode, details: str, trailing: Any = ()) -> None:
        self.aborted.append((code, details))
        raise RuntimeError("aborted")


async def test_maps_errors_decorator_aborts_with_the_status() -> None:
    class Servicer:
        @maps_errors
        async def Get(self, request: Any, context: Any) -> str:
            raise PermissionDenied("not yours")

        @maps_errors
        async def Stream(self, request: Any, context: Any) -> AsyncIterator[str]:
            yield "first"
            raise NotFound("clue k9")

    context = _AbortingContext()
    with pytest.raises(RuntimeError, match="aborted"):
        await Servicer().Get(None, context)
    with pytest.raises(RuntimeError, match="aborted"):
        _ = [item async for item in Servicer().Stream(None, context)]
    assert context.aborted == [
        (grpc.StatusCode.PERMISSION_DENIED, "permission denied: not yours"),
        (grpc.StatusCode.NOT_FOUND, "clue k9 not found"),
    ]


def test_require_checks_roles_then_scope() -> None:
    with pytest.raises(PermissionDenied, match="requires one of the roles county_head"):
        require(ALICE, roles={"county_head"}, county_id="c1")
    with pytest.raises(PermissionDenied, match="not scoped to county 'c2'"):
        require(ALICE, roles={"intake_officer"}, county_id="c2")
    require(ALICE, roles={"intake_officer", "county_head"}, county_id="c1", zone_id="z1")
    with pytest.raises(ValueError):
        require(ALICE, roles=set(), county_id="c1")
