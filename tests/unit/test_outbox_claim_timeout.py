"""The outbox relay's claim timeout is a setting (XIEZUO_OUTBOX_CLAIM_TIMEOUT_SECONDS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.runtime.host import ServiceHost
from services.runtime.settings import PlatformSettings, Settings


async def _relay_claim_timeout(tmp_path: Path) -> float:
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    try:
        return host.relay.claim_timeout_seconds
    finally:
        await host.database.dispose()


async def test_the_default_claim_timeout_is_two_minutes(tmp_path: Path) -> None:
    assert await _relay_claim_timeout(tmp_path) == 120.0


async def test_the_relay_takes_the_configured_claim_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_OUTBOX_CLAIM_TIMEOUT_SECONDS", "7.5")
    assert await _relay_claim_timeout(tmp_path) == 7.5


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_claim_timeout_that_cannot_be_is_refused_at_start(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_OUTBOX_CLAIM_TIMEOUT_SECONDS", value)
    with pytest.raises(ValidationError):
        PlatformSettings()
