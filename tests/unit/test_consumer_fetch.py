"""A batched consumer's fetch waits for a fuller batch (XIEZUO_CONSUMER_FETCH_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.contracts.intake import ClueRegistered
from services.runtime.bus import bind_consumer, build_broker
from services.runtime.host import ServiceHost
from services.runtime.settings import PlatformSettings, Settings


async def _fetch_options(tmp_path: Path, service: str = "cases") -> dict[str, Any]:
    """What the service's Kafka subscriber is built with, as its host wires it."""
    host = ServiceHost(Settings(service, PlatformSettings(state_dir=tmp_path)))
    try:

        async def ignore(*_: Any) -> None:
            return None

        host.consumer.on(ClueRegistered, ignore)
        broker = build_broker("127.0.0.1:9", client_id="test")
        bind_consumer(broker, host.consumer)
        (subscriber,) = broker.subscribers
        # FastStream hands these to aiokafka's consumer as they are.
        options: dict[str, Any] = subscriber._connection_args  # type: ignore[attr-defined]
        return options
    finally:
        await host.database.dispose()


async def test_a_fetch_waits_for_32_kib_or_a_tenth_of_a_second(tmp_path: Path) -> None:
    options = await _fetch_options(tmp_path)
    assert (options["fetch_min_bytes"], options["fetch_max_wait_ms"]) == (32_768, 100)


async def test_the_fetch_takes_the_configured_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_CONSUMER_FETCH_MIN_BYTES", "1")
    monkeypatch.setenv("XIEZUO_CONSUMER_FETCH_WAIT_MS", "0")
    options = await _fetch_options(tmp_path)
    assert (options["fetch_min_bytes"], options["fetch_max_wait_ms"]) == (1, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("XIEZUO_CONSUMER_FETCH_MIN_BYTES", "0"), ("XIEZUO_CONSUMER_FETCH_WAIT_MS", "-1")],
)
def test_a_fetch_setting_that_cannot_be_is_refused_at_start(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        PlatformSettings()
