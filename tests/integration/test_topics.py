"""Topics a service creates at start-up take the configured partitions and replication."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.runtime.host import ensure_topics
from services.runtime.localstack import KafkaNode
from services.runtime.settings import PlatformSettings
from tests.integration.helpers import unique

pytestmark = pytest.mark.kafka

# What a service's start-up uses by default (the platform settings' defaults).
_DEFAULTS = PlatformSettings.model_fields
AS_AT_START_UP = {
    "partitions": _DEFAULTS["kafka_topic_partitions"].default,
    "replication_factor": _DEFAULTS["kafka_topic_replication_factor"].default,
}


async def _partitions(bootstrap: str, topic: str) -> int:
    """The topic's partition count once the broker's metadata shows them (bounded wait)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(50):
            [description] = await admin.describe_topics([topic])
            if description["partitions"]:
                return len(description["partitions"])
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return 0


async def test_missing_topics_are_created_with_the_configured_partitions(kafka: KafkaNode) -> None:
    # The contract topics first, as any service's start-up makes them: only ours is missing.
    await ensure_topics(kafka.bootstrap_servers, **AS_AT_START_UP)
    topic = unique("xiezuo.test.topics")
    await ensure_topics(kafka.bootstrap_servers, topic, partitions=4, replication_factor=1)
    assert await _partitions(kafka.bootstrap_servers, topic) == 4
    # Existing topics are left as they are.
    await ensure_topics(kafka.bootstrap_servers, topic, partitions=2, replication_factor=1)
    assert await _partitions(kafka.bootstrap_servers, topic) == 4


async def test_a_replication_factor_the_cluster_cannot_meet_is_refused(kafka: KafkaNode) -> None:
    # One broker cannot hold three replicas: start-up must fail, not quietly create weaker topics.
    await ensure_topics(kafka.bootstrap_servers, **AS_AT_START_UP)
    with pytest.raises(KafkaError):
        await ensure_topics(
            kafka.bootstrap_servers, unique("xiezuo.test.rf"), partitions=1, replication_factor=3
        )
