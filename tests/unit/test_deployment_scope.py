"""Two deployments on one broker: each its own consumer groups (XIEZUO_KAFKA_GROUP_PREFIX) and
only its own counties' events applied (XIEZUO_COUNTIES)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.cli.projection import group_of, inbox_of
from services.contracts.intake import ClueRegistered
from services.runtime.host import ServiceHost
from services.runtime.inbox import EventConsumer, Outcome
from services.runtime.settings import PlatformSettings, Settings
from tests.integration.helpers import clue_registered, envelope_of_event, record_of


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


async def test_another_deployments_county_is_ignored_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XIEZUO_COUNTIES", '["c-qingyu"]')
    host = ServiceHost(Settings("cases", PlatformSettings(state_dir=tmp_path)))
    try:
        assert host.consumer.counties == {"c-qingyu"}
    finally:
        await host.database.dispose()
    applied: list[str] = []

    async def handler(_session: object, event: ClueRegistered, _envelope: object) -> None:
        applied.append(event.clue_id)

    # No database: an event of a county this deployment does not serve never reaches one.
    consumer = EventConsumer(
        service="cases",
        database=None,  # type: ignore[arg-type]
        dead_letter_producer=None,  # type: ignore[arg-type]
        counties=frozenset({"c-qingyu"}),
    )
    consumer.on(ClueRegistered, handler)
    theirs = envelope_of_event(clue_registered(county="c-demo"))
    assert await consumer.consume(record_of(theirs, topic=ClueRegistered.topic)) is Outcome.IGNORED
    assert applied == []
