"""Server CPU per gRPC call through the services' interceptor chain, against a bare server.

Run: ``.venv/bin/python bench/grpc_interceptors.py [--seconds 8] [--clients 8]
[--modes bare,noop4,otel,ours,chain]``.

An echo method (200-byte request, no protobuf) is served in this process, once per mode;
closed-loop clients in a child process call it for a 2 s warm-up, then for ``--seconds``.
Per mode it prints calls/s and this process's CPU (user + system) per call. Modes:

- ``bare``: ``grpc.aio.server()`` without interceptors;
- ``noop4``: four interceptors that only await their continuation;
- ``otel``: OpenTelemetry's aio server interceptor alone;
- ``ours``: call metrics, authentication and error mapping (ours), no tracing;
- ``chain``: ``GrpcEndpoint`` as the services run it (tracing and ours).

Never asserts timings: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from services.runtime.grpc.auth import AuthenticationInterceptor
from services.runtime.grpc.conversion import request_violations
from services.runtime.grpc.errors import ErrorMappingInterceptor
from services.runtime.grpc.metrics import CallMetricsInterceptor
from services.runtime.grpc.server import GrpcEndpoint
from services.runtime.telemetry import configure_tracing
from services.runtime.tokens import (
    Principal,
    TokenIssuer,
    TokenVerifier,
    ensure_dev_keypair,
)

MODES = ("bare", "noop4", "otel", "ours", "chain")
SERVICE = "bench.Echo"
CLIENT = r"""
import asyncio, sys, time, grpc
async def main(port, token, seconds, clients):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/bench.Echo/Echo")
        metadata = (("authorization", "Bearer " + token),)
        done = 0
        end = time.monotonic() + seconds
        async def one():
            nonlocal done
            while time.monotonic() < end:
                await call(b"x" * 200, metadata=metadata)
                done += 1
        await asyncio.gather(*(one() for _ in range(clients)))
        print(done)
asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
"""


async def _echo(request: bytes, _context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


def _register(server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),)
    )


class _PassOn(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        return await continuation(handler_call_details)


def _ignore(_method: str, _code: str, _seconds: float) -> None:
    """Call metrics recorded nowhere: the interceptor's own work is what is measured."""


async def _serve(mode: str, verifier: TokenVerifier) -> tuple[int, Callable[[], Awaitable[None]]]:
    """Start the mode's server on a free port; its port and how to stop it."""
    if mode == "chain":
        endpoint = GrpcEndpoint(
            address="127.0.0.1:0",
            service_names=[SERVICE],
            register=_register,
            verifier=verifier,
            interceptors=[CallMetricsInterceptor(_ignore)],
            tracer_provider=configure_tracing("bench", None),
        )
        return await endpoint.start(), lambda: endpoint.stop(0)
    interceptors: list[Any] = []
    if mode == "noop4":
        interceptors = [_PassOn() for _ in range(4)]
    elif mode == "otel":
        interceptors = [aio_server_interceptor(tracer_provider=configure_tracing("bench", None))]
    elif mode == "ours":
        interceptors = [
            CallMetricsInterceptor(_ignore),
            AuthenticationInterceptor(verifier),
            ErrorMappingInterceptor(check_request=request_violations),
        ]
    server = grpc.aio.server(interceptors=interceptors)
    _register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return port, lambda: server.stop(0)


async def _drive(port: int, token: str, seconds: float, clients: int) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        str(port),
        token,
        str(seconds),
        str(clients),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return int(out)


async def run(mode: str, seconds: float, clients: int) -> str:
    """One mode: warm up, then measure; a line of numbers."""
    with tempfile.TemporaryDirectory(prefix="xiezuo-grpc-bench-") as keys:
        private_key, public_key = ensure_dev_keypair(Path(keys))
        verifier = TokenVerifier([public_key.read_bytes()], issuer="bench", audience="bench")
        issuer = TokenIssuer(private_key.read_bytes(), issuer="bench", audience="bench")
    principal = Principal(
        subject="bench", roles=frozenset({"bench"}), county_id="c", zone_ids=(), township_ids=()
    )
    token = issuer.issue(principal)
    port, stop = await _serve(mode, verifier)
    try:
        await _drive(port, token, 2.0, clients)
        started = time.process_time()
        calls = await _drive(port, token, seconds, clients)
        spent = time.process_time() - started
    finally:
        await stop()
    return f"{mode}: {calls / seconds:,.0f} calls/s, server CPU {1e6 * spent / calls:.1f} µs a call"


def main() -> None:
    """Parse, run each mode in turn, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    for mode in args.modes.split(","):
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        print(asyncio.run(run(mode, args.seconds, args.clients)), flush=True)


if __name__ == "__main__":
    main()
