"""Every running service shows its consumer lag and outbox age on /metrics, refreshed on its own.

The four services run as real processes (the session's stack); nothing here calls a probe by
hand, so this fails if a service's host stops wiring them.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.settings import SERVICES
from tests.e2e.conftest import Stack

# Probes run every 5 s (outbox age) and 10 s (lag); a loaded CI machine gets some slack.
WITHIN = 90.0
Samples = list[tuple[str, dict[str, str], float]]


async def _scrape(url: str) -> Samples:
    def fetch() -> str:
        with urllib.request.urlopen(url, timeout=10) as reply:
            body: bytes = reply.read()
        return body.decode()

    text = await asyncio.to_thread(fetch)
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _gauges_in_place(service: str, samples: Samples) -> str | None:
    """What is still missing or non-zero on an idle service's page (None: all there)."""
    lag: dict[str, dict[int, float]] = defaultdict(dict)
    ages = []
    for name, labels, value in samples:
        if name == "xiezuo_consumer_lag_records":
            assert labels["service"] == service and labels["group"] == f"xiezuo-{service}"
            lag[labels["topic"]][int(labels["partition"])] = value
        if name == "xiezuo_outbox_oldest_unpublished_age_seconds":
            ages.append(value)
    if not lag:
        return "no consumer lag series"
    for topic, partitions in lag.items():
        assert sorted(partitions) == list(range(len(partitions))), (topic, partitions)
        if any(partitions.values()):
            return f"lag on {topic}: {partitions}"
    if ages != [0]:
        return f"outbox age {ages}"
    return None


@pytest.mark.kafka
async def test_each_service_shows_lag_and_outbox_age_on_its_own(stack: Stack) -> None:
    for service in SERVICES:
        until = time.monotonic() + WITHIN
        while (
            missing := _gauges_in_place(service, await _scrape(stack.metrics(service)))
        ) is not None:
            if time.monotonic() > until:
                pytest.fail(f"{service}: {missing} after {WITHIN:.0f} s")
            await asyncio.sleep(1.0)
        samples = await _scrape(stack.metrics(service))
        probes = {
            labels["probe"]: value
            for name, labels, value in samples
            if name == "xiezuo_metrics_probe_failures_total"
        }
        expected = {"outbox_age", "consumer_lag", "audit_heads"} | (
            {"deadlines"} if service == "cases" else set()
        )
        assert set(probes) == expected, (service, probes)
        unsealed = [v for n, _, v in samples if n == "xiezuo_audit_unsealed_chain_heads"]
        assert unsealed == [0], (service, unsealed)
