"""Service errors as gRPC statuses with google.rpc rich details, on both ends of a call."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

# Trailing-metadata key gRPC uses for a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

Behaviour = Callable[..., Any]
Around = Callable[[grpc.aio.ServicerContext[Any, Any]], AbstractAsyncContextManager[None]]
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its path (e.g. `subject.name`) and what is wrong with it."""

    field: str
    description: str


class ServiceError(Exception):
    """An expected failure a servicer raises; mapped to a gRPC status by the server."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        """google.rpc detail messages to attach to the status."""
        return []

    def to_status(self) -> status_pb2.Status:
        """This error as a google.rpc.Status."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        status.details.extend(self.details())
        return status


class InvalidArgument(ServiceError):
    """The request has bad fields; carries a BadRequest with one violation per field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Sequence[FieldViolation], message: str = "") -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        self.violations = tuple(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid request: {summary}")

    def details(self) -> list[any_pb2.Any]:
        """A BadRequest listing the field violations."""
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [packed]


class PermissionDenied(ServiceError):
    """The caller is authenticated but not allowed to do this."""

    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, reason: str) -> None:
        super().__init__(f"permission denied: {reason}")
        self.reason = reason


class NotFound(ServiceError):
    """The named thing does not exist (or the caller may not know that it does)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class AlreadyExists(ServiceError):
    """The thing to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} already exists")
        self.what = what


class FailedPrecondition(ServiceError):
    """The system is not in a state that allows this operation."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def abort_with_error(
    context: grpc.aio.ServicerContext[Any, Any], error: ServiceError
) -> None:
    """End the call with error's status and rich details (raises, never returns)."""
    status = rpc_status.to_status(error.to_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


async def abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any], violations: Sequence[FieldViolation]
) -> None:
    """End the call with INVALID_ARGUMENT and a BadRequest."""
    await abort_with_error(context, InvalidArgument(violations))


async def abort_permission_denied(context: grpc.aio.ServicerContext[Any, Any], reason: str) -> None:
    """End the call with PERMISSION_DENIED."""
    await abort_with_error(context, PermissionDenied(reason))


async def abort_not_found(context: grpc.aio.ServicerContext[Any, Any], what: str) -> None:
    """End the call with NOT_FOUND."""
    await abort_with_error(context, NotFound(what))


def wrap_handler(handler: grpc.RpcMethodHandler, around: Around) -> grpc.RpcMethodHandler:
    """The same method handler with every call run inside `around(context)`.

    Response-streaming behaviours always become async generators, so callers (and outer
    interceptors such as OpenTelemetry's) see one shape whether the servicer yields or uses
    `context.write`. Behaviours are async servicer methods; a sync one would run on the loop.
    """
    request_streaming = handler.request_streaming
    response_streaming = handler.response_streaming
    if response_streaming:
        inner = handler.stream_stream if request_streaming else handler.unary_stream
        wrapped: Behaviour = _streaming(inner, around)
        factory = (
            grpc.stream_stream_rpc_method_handler
            if request_streaming
            else grpc.unary_stream_rpc_method_handler
        )
    else:
        inner = handler.stream_unary if request_streaming else handler.unary_unary
        wrapped = _unary(inner, around)
        factory = (
            grpc.stream_unary_rpc_method_handler
            if request_streaming
            else grpc.unary_unary_rpc_method_handler
        )
    return cast(
        grpc.RpcMethodHandler,
        factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        ),
    )


def _unary(behaviour: Behaviour, around: Around) -> Behaviour:
    """Wrap a single-response behaviour."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async with around(context):
            result = behaviour(request, context)
            return await result if inspect.isawaitable(result) else result

    return call


def _streaming(behaviour: Behaviour, around: Around) -> Behaviour:
    """Wrap a response-streaming behaviour as an async generator."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        async with around(context):
            result = behaviour(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            elif inspect.isawaitable(result):
                await result  # writes its responses with context.write
            elif result is not None:
                for response in result:
                    yield response

    return call


@asynccontextmanager
async def _mapped_errors(context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """Turn a ServiceError raised inside into an abort with its status."""
    try:
        yield
    except ServiceError as error:
        await abort_with_error(context, error)


def maps_errors(method: _F) -> _F:
    """Decorate an async servicer method so a raised ServiceError aborts with its status."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            async with _mapped_errors(context):
                async for response in method(self, request, context):
                    yield response

        return cast(_F, stream)

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        async with _mapped_errors(context):
            return await cast(Callable[..., Awaitable[Any]], method)(self, request, context)

    return cast(_F, unary)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps ServiceError raised by any servicer to its gRPC status, so servicers just raise."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the method's handler in the error mapping."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap_handler(handler, _mapped_errors)


def status_of(rpc_error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status carried in an RPC error's trailing metadata, if any."""
    trailing = getattr(rpc_error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def field_violations(rpc_error: grpc.RpcError) -> list[tuple[str, str]]:
    """(field, description) pairs of the BadRequest in an RPC error; empty if there is none."""
    status = status_of(rpc_error)
    if status is None:
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found


__all__ = [
    "STATUS_DETAILS_KEY",
    "AlreadyExists",
    "ErrorMappingInterceptor",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ServiceError",
    "abort_invalid",
    "abort_not_found",
    "abort_permission_denied",
    "abort_with_error",
    "field_violations",
    "maps_errors",
    "status_of",
    "wrap_handler",
]
