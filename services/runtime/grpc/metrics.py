"""Counts and times every gRPC call by method and status code."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc

from services.runtime.grpc.errors import wrap_handler

# (method, code, seconds from the call's arrival to its status)
RecordCall = Callable[[str, str, float], None]


@asynccontextmanager
async def _recorded(
    record: RecordCall, method: str, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[None]:
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        # An abort (or a crash) surfaces here; the context knows which code was sent.
        code = context.code()
        record(method, _name(code) if code is not None else "UNKNOWN", _since(started))
        raise
    code = context.code()
    record(method, _name(code) if code is not None else "OK", _since(started))


def _since(started: float) -> float:
    return time.perf_counter() - started


def _name(code: Any) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class CallMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Reports `(method, code, seconds)` of each finished call."""

    def __init__(self, record: RecordCall) -> None:
        self._record = record

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the method's handler so its outcome and duration are recorded."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return wrap_handler(handler, functools.partial(_recorded, self._record, method))
