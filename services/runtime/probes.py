"""Gauges read from the database and Kafka on a timer, so a scrape never waits on them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Refresh = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Probe:
    """One gauge refresh and how often it runs."""

    name: str
    refresh: Refresh
    interval: float


class Probes:
    """Runs each probe every `interval` seconds; a failed round is counted, logged, retried."""

    def __init__(self, on_failure: Callable[[str], None] | None = None) -> None:
        self._probes: list[Probe] = []
        self._on_failure = on_failure

    def add(self, name: str, refresh: Refresh, *, interval: float) -> None:
        """Refresh `name`'s gauges every `interval` seconds once `run` starts."""
        self._probes.append(Probe(name, refresh, interval))

    @property
    def names(self) -> list[str]:
        """The probes added so far, in order."""
        return [probe.name for probe in self._probes]

    async def refresh_all(self) -> None:
        """One round of every probe now (failures are counted, not raised)."""
        for probe in self._probes:
            await self._round(probe)

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every probe on its own timer until `stop` is set."""
        await asyncio.gather(*(self._loop(probe, stop) for probe in self._probes))

    async def _loop(self, probe: Probe, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._round(probe)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), probe.interval)

    async def _round(self, probe: Probe) -> None:
        try:
            await probe.refresh()
        except Exception as exc:
            # The gauge keeps its last value; the failure counter tells it is stale.
            if self._on_failure is not None:
                self._on_failure(probe.name)
            log.warning(
                "metrics probe failed",
                extra={"probe": probe.name, "error_type": type(exc).__name__},
            )
