"""Gauge refreshes on a timer: a failing one is counted and retried, the others keep going."""

from __future__ import annotations

import asyncio

from services.runtime.probes import Probes
from services.runtime.telemetry import ServiceMetrics


async def test_a_failing_probe_is_counted_and_does_not_stop_the_others() -> None:
    metrics = ServiceMetrics("cases")
    probes = Probes(on_failure=metrics.probe_failed)
    stop = asyncio.Event()
    rounds = {"outbox_age": 0, "consumer_lag": 0}

    async def outbox_age() -> None:
        rounds["outbox_age"] += 1
        if rounds["outbox_age"] >= 3 and rounds["consumer_lag"] >= 3:
            stop.set()

    async def consumer_lag() -> None:
        rounds["consumer_lag"] += 1
        raise ConnectionError("broker away")

    probes.add("outbox_age", outbox_age, interval=0.01)
    probes.add("consumer_lag", consumer_lag, interval=0.01)
    await asyncio.wait_for(probes.run(stop), 30)

    def failures(probe: str) -> float | None:
        labels = {"service": "cases", "probe": probe}
        return metrics.registry.get_sample_value("xiezuo_metrics_probe_failures_total", labels)

    assert rounds["consumer_lag"] >= 3 and rounds["outbox_age"] >= 3
    assert failures("consumer_lag") == rounds["consumer_lag"]
    assert failures("outbox_age") is None
