"""Each deployment on a shared broker names its own consumer groups (XIEZUO_KAFKA_GROUP_PREFIX)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.cli.projection import group_of, inbox_of
from services.runtime.host import ServiceHost
from services.runtime.settings import PlatformSettings, Settings


async def test_the_default_group_is_unchanged(tmp_path: Path) -> None:
    host = ServiceHost(Settings("collaboration", PlatformSettings(state_dir=tmp_path)))
    try:
        assert host.consumer.group_id == "xiezuo-collaboration"
        assert host.lag.group == "xiezuo-collaboration"
    finally:
        await host.database.dispose()


async def test_a_second_deployment_joins_its_own_group_and_keeps_its_inbox_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_KAFKA_GROUP_PREFIX", "xiezuo-c-qingyu")
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    try:
        assert host.consumer.group_id == "xiezuo-c-qingyu-cases"
        # The lag gauge and KEDA read the group this deployment actually commits in.
        assert host.lag.group == "xiezuo-c-qingyu-cases"
        # The inbox is per database: a new prefix replays into the same inbox, no effect twice.
        assert host.consumer.consumer_name == "xiezuo-cases"
    finally:
        await host.database.dispose()
    assert group_of("cases", "xiezuo-c-qingyu") == "xiezuo-c-qingyu-cases"
    assert inbox_of("cases") == "xiezuo-cases"


def test_a_prefix_kafka_would_refuse_is_refused_at_start() -> None:
    with pytest.raises(ValidationError):
        PlatformSettings(kafka_group_prefix="two words")
