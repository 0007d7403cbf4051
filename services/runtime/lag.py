"""Consumer lag of one consumer group: each partition's end offset minus the group's commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)
# One answer from the cluster; end_offsets waits forever on a partition it cannot find.
REQUEST_SECONDS = 10.0

SetLag = Callable[[str, str, int, int], None]


class ConsumerLag:
    """Measures a group's lag from outside the group, so a stopped or stuck consumer shows it.

    The group's own consumers are not asked: a consumer that is down, hung in a handler or
    rebalancing is exactly when lag matters. Every replica of a service measures the whole
    group, so replicas report the same numbers (aggregate with max, not sum).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        group: str,
        topics: Sequence[str],
        client_id: str,
        client_options: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self.group = group
        self.topics = sorted(topics)
        self._client_id = client_id
        # Called whenever clients are built, so a rotated password file counts from then on.
        self._options = client_options or dict
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def measure(self) -> dict[tuple[str, int], int]:
        """Lag by (topic, partition); a partition never committed counts from its first record."""
        if not self.topics:
            return {}
        try:
            return await asyncio.wait_for(self._measure(), REQUEST_SECONDS)
        except BaseException:
            # A client that failed once is rebuilt on the next call (the broker may be back).
            await self.close()
            raise

    async def _measure(self) -> dict[tuple[str, int], int]:
        admin, offsets = await self._clients()
        partitions = [
            TopicPartition(entry["topic"], part["partition"])
            for entry in await admin.describe_topics(self.topics)
            if not entry.get("error_code")
            for part in entry.get("partitions", [])
        ]
        if not partitions:
            return {}
        found = await admin.list_consumer_group_offsets(self.group, partitions=partitions)
        committed = {tp: meta.offset for tp, meta in found.items()}
        ends = await offsets.end_offsets(partitions)
        uncommitted = [tp for tp in partitions if committed.get(tp, -1) < 0]
        # The group starts at the earliest record (auto_offset_reset="earliest"), so a
        # partition it never committed owes everything still retained.
        starts = await offsets.beginning_offsets(uncommitted) if uncommitted else {}
        lag: dict[tuple[str, int], int] = {}
        for tp in partitions:
            done = committed.get(tp, -1)
            position = done if done >= 0 else starts[tp]
            lag[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
        return lag

    async def refresh(self, set_lag: SetLag) -> None:
        """Measure and report each partition's lag as (group, topic, partition, lag)."""
        for (topic, partition), lag in sorted((await self.measure()).items()):
            set_lag(self.group, topic, partition, lag)

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            options = dict(self._options())
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, client_id=self._client_id, **options
            )
            # No group: this client only asks for end offsets and never joins or commits.
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                **options,
            )
            self._admin, self._offsets = admin, offsets
            await admin.start()
            await offsets.start()
        return self._admin, self._offsets

    async def close(self) -> None:
        """Disconnect both clients (the next measure connects again)."""
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        if offsets is not None:
            with contextlib.suppress(Exception):
                await offsets.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
