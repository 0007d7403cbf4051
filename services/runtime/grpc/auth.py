"""Bearer-token authentication for every gRPC call, and the scope check policies build on."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from services.runtime.grpc.errors import PermissionDenied, shorten, wrap_handler
from services.runtime.tokens import Principal, TokenInvalid, TokenVerifier

# Infrastructure services that must answer without a token (probes, grpcurl, load balancers).
EXEMPT_SERVICES: tuple[str, ...] = (
    health.SERVICE_NAME,
    reflection.SERVICE_NAME,
    "grpc.reflection.v1.ServerReflection",
)
AUTHORIZATION_KEY = "authorization"

_principal: ContextVar[Principal | None] = ContextVar("xiezuo_grpc_principal", default=None)


class NoPrincipal(RuntimeError):
    """current_principal() was called outside an authenticated call."""


def current_principal() -> Principal:
    """The authenticated caller of the gRPC call being handled."""
    principal = _principal.get()
    if principal is None:
        raise NoPrincipal("no authenticated principal: not inside an authenticated gRPC call")
    return principal


def service_of(method: str) -> str:
    """The full service name of a method path such as `/pkg.Service/Method`."""
    return method.lstrip("/").split("/", 1)[0]


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The token of the single `authorization: Bearer <token>` entry; TokenInvalid otherwise."""
    values = [value for key, value in metadata or () if key.lower() == AUTHORIZATION_KEY]
    if not values:
        raise TokenInvalid("missing 'authorization: Bearer <token>' metadata")
    if len(values) > 1:
        raise TokenInvalid("more than one authorization metadata entry")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    scheme, _, token = str(value).strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenInvalid("authorization metadata is not 'Bearer <token>'")
    return token.strip()


@asynccontextmanager
async def _acting_as(
    principal: Principal, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[None]:
    """Make principal the current_principal() for the duration of the call."""
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


@asynccontextmanager
async def _rejected(
    message: str, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[None]:
    """Abort with UNAUTHENTICATED before the servicer runs."""
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
    yield  # unreachable: abort raises; keeps this a valid context manager


class AuthenticationInterceptor(grpc.aio.ServerInterceptor):
    """Verifies the bearer token of every call except health and reflection.

    The principal is set inside the wrapped handler (not in intercept_service) so it is
    visible to the servicer whatever task or context gRPC runs the handler in.
    """

    def __init__(
        self, verifier: TokenVerifier, *, exempt_services: Collection[str] = EXEMPT_SERVICES
    ) -> None:
        self._verifier = verifier
        self._exempt = frozenset(exempt_services)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Authenticate the call and wrap its handler to act as the caller, or to reject it."""
        handler = await continuation(handler_call_details)
        if handler is None or service_of(handler_call_details.method) in self._exempt:
            return handler
        try:
            token = bearer_token(handler_call_details.invocation_metadata)
            principal = self._verifier.verify(token)
        except TokenInvalid as error:
            return wrap_handler(
                handler, functools.partial(_rejected, f"unauthenticated: {error.reason}")
            )
        return wrap_handler(handler, functools.partial(_acting_as, principal))


def require(
    principal: Principal,
    *,
    roles: Collection[str],
    county_id: str,
    zone_id: str | None = None,
) -> None:
    """Raise PermissionDenied unless principal holds one of roles within the county (and zone)."""
    if not roles:
        raise ValueError("require() needs at least one acceptable role")
    if principal.roles.isdisjoint(roles):
        held = ", ".join(sorted(principal.roles)) or "none"
        raise PermissionDenied(
            f"requires one of the roles {', '.join(sorted(roles))}; {principal.subject} has {held}"
        )
    if not principal.can_see_county(county_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to county {shorten(county_id)!r}"
        )
    if zone_id is not None and not principal.can_see_zone(county_id, zone_id):
        raise PermissionDenied(
            f"{principal.subject} is not scoped to zone {shorten(zone_id)!r}"
            f" of county {shorten(county_id)!r}"
        )
