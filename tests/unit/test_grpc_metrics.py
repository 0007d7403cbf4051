"""Served gRPC calls land in the latency histogram by method and status code."""

from __future__ import annotations

import urllib.request
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.grpc.metrics import CallMetricsInterceptor
from services.runtime.telemetry import GRPC_BUCKETS, ServiceMetrics, start_metrics_server

ECHO = "/xiezuo.test.v1.Echo/Say"


async def _say(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    if not request:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "say something")
    return request


def _histogram(port: int) -> dict[tuple[str, str, str], float]:
    """(sample name, method, code) → value for the gRPC latency histogram, read over HTTP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        (
            sample.name,
            sample.labels["method"],
            sample.labels["code"] + sample.labels.get("le", ""),
        ): (sample.value)
        for family in text_string_to_metric_families(body)
        if family.name == "xiezuo_grpc_server_handling_seconds"
        for sample in family.samples
    }


async def test_each_call_is_timed_under_its_method_and_code() -> None:
    metrics = ServiceMetrics("intake")
    server = grpc.aio.server(interceptors=[CallMetricsInterceptor(metrics.grpc_request)])
    handler = grpc.unary_unary_rpc_method_handler(_say)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("xiezuo.test.v1.Echo", {"Say": handler})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            say = channel.unary_unary(ECHO)
            assert await say(b"hello") == b"hello"
            assert await say(b"again") == b"again"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await say(b"")
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await server.stop(grace=None)

    http, metrics_port = start_metrics_server(metrics.registry, "127.0.0.1", 0)
    try:
        samples = _histogram(metrics_port)
    finally:
        http.stop()
    assert samples[("xiezuo_grpc_server_handling_seconds_count", ECHO, "OK")] == 2
    assert samples[("xiezuo_grpc_server_handling_seconds_count", ECHO, "INVALID_ARGUMENT")] == 1
    # Every call falls in the +Inf bucket; the buckets run 5 ms to 10 s.
    assert samples[("xiezuo_grpc_server_handling_seconds_bucket", ECHO, "OK+Inf")] == 2
    assert GRPC_BUCKETS[0] == 0.005 and GRPC_BUCKETS[-1] == 10.0
    assert ("xiezuo_grpc_server_handling_seconds_bucket", ECHO, "OK0.005") in samples
    assert ("xiezuo_grpc_server_handling_seconds_bucket", ECHO, "OK10.0") in samples
