"""Service errors as gRPC statuses with google.rpc rich details, on both ends of a call."""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace

# Trailing-metadata key gRPC uses for a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# What an error message may repeat of one caller's value; the rest is cut.
ECHO_LIMIT = 64
# No status message is longer than this, whatever a servicer put in it.
MESSAGE_LIMIT = 1024
_log = logging.getLogger("xiezuo.grpc")

Behaviour = Callable[..., Any]
Around = Callable[[grpc.aio.ServicerContext[Any, Any]], AbstractAsyncContextManager[None]]
# Checks a request before its servicer sees it: the violations that refuse it (none to pass).
RequestCheck = Callable[[Any], Sequence["FieldViolation"]]
_F = TypeVar("_F", bound=Callable[..., Any])


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """value as text cut to `limit` characters (with '…'), for echoing in an error message."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: its path (e.g. `subject.name`) and what is wrong with it."""

    field: str
    description: str


class ServiceError(Exception):
    """An expected failure a servicer raises; mapped to a gRPC status by the server."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        # A message built from a caller's values must not grow with them.
        message = shorten(message, MESSAGE_LIMIT)
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
                    field=shorten(v.field, MESSAGE_LIMIT),
                    description=shorten(v.description, MESSAGE_LIMIT),
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
    """The named thing does not exist (or the caller may not know that it does).

    `what` is the kind of resource (`clue`); `name` the caller's id for it, echoed cut short.
    Carries a google.rpc.ResourceInfo.
    """

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, what: str, name: object = None) -> None:
        self.resource_type = shorten(what)
        self.resource_name = "" if name is None else shorten(name)
        label = f"{what} {self.resource_name}" if name is not None else what
        super().__init__(f"{shorten(label, 2 * ECHO_LIMIT)} not found")
        self.what = what

    def details(self) -> list[any_pb2.Any]:
        """A ResourceInfo naming the missing resource."""
        packed = any_pb2.Any()
        packed.Pack(
            error_details_pb2.ResourceInfo(
                resource_type=self.resource_type,
                resource_name=self.resource_name,
                description="not found",
            )
        )
        return [packed]


class AlreadyExists(ServiceError):
    """The thing to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} already exists")
        self.what = what


class FailedPrecondition(ServiceError):
    """The system is not in a state that allows this operation; carries a PreconditionFailure.

    `kind` is the violation's type (`STATE` unless said otherwise), `subject` what it is about.
    """

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, reason: str, *, kind: str = "STATE", subject: str = "") -> None:
        super().__init__(reason)
        self.reason = self.message
        self.kind = kind
        self.subject = shorten(subject)

    def details(self) -> list[any_pb2.Any]:
        """A PreconditionFailure with the one violated condition."""
        packed = any_pb2.Any()
        packed.Pack(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=self.kind, subject=self.subject, description=self.message
                    )
                ]
            )
        )
        return [packed]


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


async def abort_not_found(
    context: grpc.aio.ServicerContext[Any, Any], what: str, name: object = None
) -> None:
    """End the call with NOT_FOUND."""
    await abort_with_error(context, NotFound(what, name))


def wrap_handler(
    handler: grpc.RpcMethodHandler, around: Around, check: RequestCheck | None = None
) -> grpc.RpcMethodHandler:
    """The same method handler with every call run inside `around(context)`.

    `check`, if given, vets a single request inside `around`; its violations refuse the call
    with INVALID_ARGUMENT before the servicer runs.

    Response-streaming behaviours always become async generators, so callers (and outer
    interceptors such as OpenTelemetry's) see one shape whether the servicer yields or uses
    `context.write`. Behaviours are async servicer methods; a sync one would run on the loop.
    """
    request_streaming = handler.request_streaming
    response_streaming = handler.response_streaming
    if response_streaming:
        inner = handler.stream_stream if request_streaming else handler.unary_stream
        wrapped: Behaviour = _streaming(_checked(inner, check, request_streaming), around)
        factory = (
            grpc.stream_stream_rpc_method_handler
            if request_streaming
            else grpc.unary_stream_rpc_method_handler
        )
    else:
        inner = handler.stream_unary if request_streaming else handler.unary_unary
        wrapped = _unary(_checked(inner, check, request_streaming), around)
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


def _checked(behaviour: Behaviour, check: RequestCheck | None, streaming: bool) -> Behaviour:
    """behaviour, refusing first a single request that check finds violations in."""
    if check is None or streaming:
        return behaviour

    def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        violations = check(request)
        if violations:
            raise InvalidArgument(violations)
        return behaviour(request, context)

    return call


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


def _trace_id() -> str:
    """The current trace id in hex, or '-' outside a sampled trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.trace_id else "-"


@asynccontextmanager
async def _mapped_errors(
    context: grpc.aio.ServicerContext[Any, Any], method: str = "?"
) -> AsyncIterator[None]:
    """Turn a ServiceError raised inside into its status, anything unexpected into INTERNAL."""
    try:
        yield
    except ServiceError as error:
        await abort_with_error(context, error)
    except grpc.aio.AbortError:
        raise  # the servicer already chose the status
    except Exception as unexpected:
        correlation_id = uuid.uuid4().hex
        # The exception's text and locals may hold request data (a reporter's words): log
        # only its type and where it was raised.
        frames = "".join(traceback.format_tb(unexpected.__traceback__))
        _log.error(
            "unexpected %s in %s; correlation id %s; trace id %s\n%s",
            type(unexpected).__name__,
            method,
            correlation_id,
            _trace_id(),
            frames,
        )
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error; correlation id {correlation_id}"
        )


def maps_errors(method: _F) -> _F:
    """Decorate an async servicer method so a raised ServiceError aborts with its status."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            async with _mapped_errors(context, method.__qualname__):
                async for response in method(self, request, context):
                    yield response

        return cast(_F, stream)

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        async with _mapped_errors(context, method.__qualname__):
            return await cast(Callable[..., Awaitable[Any]], method)(self, request, context)

    return cast(_F, unary)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps ServiceError raised by any servicer to its gRPC status, so servicers just raise.

    Anything else a servicer raises becomes INTERNAL with a correlation id, logged once with
    the trace id: a safety net for bugs, never the answer to bad input. `check_request`
    refuses a malformed request (e.g. an out-of-range Timestamp) before any servicer sees it.
    """

    def __init__(self, check_request: RequestCheck | None = None) -> None:
        self._check = check_request

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the method's handler in the error mapping."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return wrap_handler(
            handler,
            functools.partial(_mapped_errors, method=handler_call_details.method),
            self._check,
        )


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
    "ECHO_LIMIT",
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
    "shorten",
    "status_of",
    "wrap_handler",
]
