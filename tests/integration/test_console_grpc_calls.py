"""The console's gRPC helper against a real gRPC server: the user's token goes out, refusals
come back as the page the user should see (sign-in, 403, 404, inline field errors, 503)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_status import rpc_status
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from xiezuo.cases.v1 import cases_pb2

from services.console.app import build_app
from services.console.grpc_calls import Refused, call, stubs
from services.console.settings import ConsoleSettings
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, ServiceError
from services.runtime.settings import PlatformSettings
from services.runtime.telemetry import configure_tracing
from services.runtime.tokens import TokenVerifier, ensure_dev_keypair
from tests.console_forms import csrf_token, dev_sign_in

GET_CASE = "/xiezuo.cases.v1.CaseService/GetCase"


class _Refusal(ServiceError):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


REFUSALS: dict[str, ServiceError] = {
    "denied": _Refusal(grpc.StatusCode.PERMISSION_DENIED, "not your zone"),
    "missing": _Refusal(grpc.StatusCode.NOT_FOUND, "no case missing"),
    "expired": _Refusal(grpc.StatusCode.UNAUTHENTICATED, "token has expired"),
    "bad": InvalidArgument([FieldViolation("case_id", "must name a case of your county")]),
}


class CaseServer:
    """A CaseService.GetCase that refuses by case id and records the tokens it was sent."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.traceparents: list[str] = []

    def get_case(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        message = cases_pb2.GetCaseRequest.FromString(request)
        metadata = dict(context.invocation_metadata() or ())
        self.tokens.append(str(metadata.get("authorization", "")))
        self.traceparents.append(str(metadata.get("traceparent", "")))
        refusal = REFUSALS.get(message.case_id)
        if refusal is not None:
            context.abort_with_status(rpc_status.to_status(refusal.to_status()))
        reply = cases_pb2.GetCaseResponse()
        reply.case.case_id = message.case_id
        return bytes(reply.SerializeToString())


@pytest.fixture
def case_server() -> Iterator[tuple[CaseServer, int]]:
    # A thread-pool server: the console under test runs its own event loop in another thread.
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    cases = CaseServer()
    handler = grpc.method_handlers_generic_handler(
        "xiezuo.cases.v1.CaseService",
        {"GetCase": grpc.unary_unary_rpc_method_handler(cases.get_case)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield cases, port
    finally:
        server.stop(None)


async def probe(request: Request) -> Response:
    """A page as a page module writes it: one call, inline errors on a refusal."""
    try:
        reply = await call(
            request,
            stubs(request).cases.GetCase,
            cases_pb2.GetCaseRequest(case_id=request.path_params["case_id"]),
        )
    except Refused as refused:
        return JSONResponse({"violations": refused.violations}, status_code=refused.status)
    return JSONResponse({"case_id": reply.case.case_id})


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return int(probe_socket.getsockname()[1])


def _signed_in_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cases_port: int
) -> TestClient:
    monkeypatch.setenv("XIEZUO_CASES_GRPC_PORT", str(cases_port))
    platform = PlatformSettings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{_free_port()}")
    app = build_app(ConsoleSettings(), platform)
    app.router.routes.append(Route("/probe/{case_id}", probe))
    client = TestClient(app)
    client.__enter__()
    dev_sign_in(client, "p-004")
    return client


def test_calls_carry_the_users_own_token_and_map_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_server: tuple[CaseServer, int]
) -> None:
    cases, port = case_server
    client = _signed_in_client(tmp_path, monkeypatch, port)
    try:
        answered = client.get("/probe/c-1")
        assert answered.json() == {"case_id": "c-1"}
        # The zone chief's own token, which the services' verifier reads as them.
        scheme, token = cases.tokens[-1].split(" ", 1)
        _, public = ensure_dev_keypair(tmp_path / "keys")
        principal = TokenVerifier(
            [public.read_bytes()], issuer="xiezuo-dev", audience="xiezuo"
        ).verify(token)
        assert scheme == "Bearer" and principal.subject == "p-004"
        assert principal.zone_ids == ("z-1",) and principal.roles == {"zone_chief"}

        denied = client.get("/probe/denied")
        assert denied.status_code == 403 and "无权" in denied.text
        missing = client.get("/probe/missing")
        assert missing.status_code == 404 and "未找到" in missing.text
        bad = client.get("/probe/bad")
        assert bad.status_code == 400
        assert bad.json() == {"violations": {"case_id": ["must name a case of your county"]}}
        # The services no longer take the token: signed out, back to sign-in, then back here.
        expired = client.get("/probe/expired", follow_redirects=False)
        assert expired.status_code == 303
        assert expired.headers["location"] == "/sign-in?next=%2Fprobe%2Fexpired&error=expired"
        assert client.get("/", follow_redirects=False).status_code == 303
        assert "登录已过期或失效" in client.get(expired.headers["location"]).text
    finally:
        client.__exit__(None, None, None)


def test_a_service_that_is_down_is_a_503_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _signed_in_client(tmp_path, monkeypatch, _free_port())
    try:
        down = client.get("/probe/c-1")
        assert down.status_code == 503 and "服务暂不可用" in down.text
    finally:
        client.__exit__(None, None, None)


def test_a_call_continues_the_requests_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_server: tuple[CaseServer, int]
) -> None:
    # What `python -m services.console` does at start: spans are real, so they propagate.
    configure_tracing("console", None)
    cases, port = case_server
    client = _signed_in_client(tmp_path, monkeypatch, port)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        answered = client.get(
            "/probe/c-1", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
        )
        assert answered.status_code == 200
    finally:
        client.__exit__(None, None, None)
    # The browser's (or the Ingress's) trace goes on through the console to the service.
    assert cases.traceparents[-1].startswith(f"00-{trace_id}-")
    assert "00f067aa0ba902b7" not in cases.traceparents[-1]


def test_a_form_sent_with_an_expired_token_comes_back_to_its_page_after_sign_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_server: tuple[CaseServer, int]
) -> None:
    _, port = case_server
    client = _signed_in_client(tmp_path, monkeypatch, port)
    client.app.router.routes.append(Route("/probe/{case_id}", probe, methods=["POST"]))  # type: ignore[attr-defined]
    try:
        sent = client.post(
            "/probe/expired",
            data={"csrf_token": csrf_token(client.get("/").text)},
            headers={"referer": "http://testserver/cases/c-9?tab=act"},
            follow_redirects=False,
        )
        assert sent.status_code == 303
        assert sent.headers["location"] == "/sign-in?next=%2Fcases%2Fc-9%3Ftab%3Dact&error=expired"
    finally:
        client.__exit__(None, None, None)
