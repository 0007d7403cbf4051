"""A grpc.aio server with health, reflection, tracing, authentication and error mapping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.trace import TracerProvider

from services.runtime.grpc.auth import AuthenticationInterceptor
from services.runtime.grpc.conversion import request_violations
from services.runtime.grpc.errors import ErrorMappingInterceptor
from services.runtime.tokens import TokenVerifier

Register = Callable[[grpc.aio.Server], None]
# grpcio-reflection ships only v1alpha; v1 has the same messages under another package, so the
# same servicer answers both (grpcurl and most tools ask v1 first).
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_SERVICES = (reflection.SERVICE_NAME, REFLECTION_V1)


class _ReflectionServicer(reflection.aio.ReflectionServicer):
    """Reflection that also resolves a method's name (`pkg.Service.Method`) to its file.

    protobuf's C descriptor pool finds messages, enums and services by name but not methods,
    so `grpcurl describe pkg.Service.Method` got "Symbol not found" for every method.
    """

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        try:
            self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            try:
                method = self._pool.FindMethodByName(fully_qualified_name)
            except KeyError:
                pass
            else:
                return super()._file_containing_symbol(request, method.containing_service.full_name)
        return super()._file_containing_symbol(request, fully_qualified_name)


def add_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serve server reflection for service_names under both v1 and v1alpha."""
    servicer = _ReflectionServicer((*service_names, health.SERVICE_NAME, *REFLECTION_SERVICES))
    handlers = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    for name in REFLECTION_SERVICES:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))


_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcEndpoint:
    """One service's gRPC server: register servicers, start on an address, stop gracefully."""

    def __init__(
        self,
        *,
        address: str,
        service_names: Sequence[str],
        register: Register,
        verifier: TokenVerifier,
        credentials: grpc.ServerCredentials | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        options: Sequence[tuple[str, Any]] = (),
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._address = address
        self._service_names = tuple(service_names)
        self._register = register
        self._verifier = verifier
        self._credentials = credentials
        self._extra_interceptors = tuple(interceptors)
        self._options = tuple(options)
        self._tracer_provider = tracer_provider
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when the address asked for port 0)."""
        if self._port is None:
            raise RuntimeError("GrpcEndpoint is not started")
        return self._port

    async def start(self, *, serving: bool = True) -> int:
        """Build, bind and start the server; returns the bound port.

        With `serving=False` health answers NOT_SERVING until `set_serving(True)`.
        """
        if self._server is not None:
            raise RuntimeError("GrpcEndpoint already started")
        # Order matters: tracing outermost so rejected calls are traced too; the extra
        # interceptors (call metrics) outside authentication so refused tokens are counted
        # too; error mapping innermost so it sees exactly what the servicer raised.
        server = grpc.aio.server(
            interceptors=[
                aio_server_interceptor(tracer_provider=self._tracer_provider),
                *self._extra_interceptors,
                AuthenticationInterceptor(self._verifier),
                ErrorMappingInterceptor(check_request=request_violations),
            ],
            options=self._options,
        )
        self._register(server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        status = health_pb2.HealthCheckResponse.SERVING if serving else _NOT_SERVING
        for name in ("", *self._service_names):
            await health_servicer.set(name, status)
        add_reflection(server, self._service_names)
        if self._credentials is None:
            port = server.add_insecure_port(self._address)
        else:
            port = server.add_secure_port(self._address, self._credentials)
        if port == 0:
            raise RuntimeError(f"could not bind gRPC server to {self._address}")
        await server.start()
        self._server, self._health, self._port = server, health_servicer, port
        return port

    async def set_serving(self, serving: bool) -> None:
        """Tell health checkers whether this server can do its work now."""
        if self._health is None:
            raise RuntimeError("GrpcEndpoint is not started")
        status = health_pb2.HealthCheckResponse.SERVING if serving else _NOT_SERVING
        for name in ("", *self._service_names):
            await self._health.set(name, status)

    async def stop(self, grace: float, *, drain: float = 0.0) -> None:
        """Report NOT_SERVING, wait `drain` for balancers to notice, then let calls finish."""
        server, health_servicer = self._server, self._health
        if server is None or health_servicer is None:
            return
        self._server = self._health = None
        await health_servicer.enter_graceful_shutdown()
        if drain > 0:
            await asyncio.sleep(drain)
        # New calls are refused at once; in-flight calls get `grace` seconds to complete.
        await server.stop(grace)

    async def wait_for_termination(self) -> None:
        """Block until the server has stopped."""
        if self._server is not None:
            await self._server.wait_for_termination()
