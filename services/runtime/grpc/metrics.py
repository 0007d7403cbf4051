"""Counts every gRPC call by method and status code."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc

from services.runtime.grpc.errors import wrap_handler

CountCall = Callable[[str, str], None]


@asynccontextmanager
async def _counted(
    count: CountCall, method: str, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[None]:
    try:
        yield
    except BaseException:
        # An abort (or a crash) surfaces here; the context knows which code was sent.
        code = context.code()
        count(method, _name(code) if code is not None else "UNKNOWN")
        raise
    code = context.code()
    count(method, _name(code) if code is not None else "OK")


def _name(code: Any) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class CallMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Reports `(method, code)` of each finished call to a counter."""

    def __init__(self, count: CountCall) -> None:
        self._count = count

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Wrap the method's handler so its outcome is counted."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return wrap_handler(handler, functools.partial(_counted, self._count, method))
