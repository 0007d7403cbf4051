"""A delivery's offset commit: its own records' offsets, sent after the one before it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from services.runtime.bus import OffsetCommits, next_offsets
from services.runtime.inbox import Record


def _record(partition: int, offset: int, topic: str = "xiezuo.intake.clues") -> Record:
    return Record(
        topic=topic, partition=partition, offset=offset, key=b"k", value=b"{}", headers=()
    )


def test_the_offsets_are_the_next_after_each_partitions_last_record() -> None:
    records = [_record(0, 7), _record(1, 3), _record(0, 9), _record(0, 8), _record(2, 0, "other")]
    assert next_offsets(records) == {
        TopicPartition("xiezuo.intake.clues", 0): OffsetAndMetadata(10, ""),
        TopicPartition("xiezuo.intake.clues", 1): OffsetAndMetadata(4, ""),
        TopicPartition("other", 2): OffsetAndMetadata(1, ""),
    }


class _Coordinator:
    """Stands in for the consumer's `commit(offsets)`: records what arrives, answers on demand."""

    def __init__(self) -> None:
        self.sent: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.answers: list[asyncio.Future[None]] = []

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.sent.append(offsets)
        answer = asyncio.get_running_loop().create_future()
        self.answers.append(answer)
        await answer


async def test_a_commit_is_not_awaited_but_the_next_one_waits_for_it() -> None:
    coordinator = _Coordinator()
    commits = OffsetCommits("xiezuo-cases")
    # Returns while the first commit is still travelling: the next delivery goes on.
    await asyncio.wait_for(commits.commit(coordinator, [_record(0, 0), _record(0, 1)]), 1)
    await asyncio.sleep(0)
    assert [
        offsets[TopicPartition("xiezuo.intake.clues", 0)].offset for offsets in coordinator.sent
    ] == [2]
    second = asyncio.create_task(commits.commit(coordinator, [_record(0, 2)]))
    await asyncio.sleep(0.01)
    # The second is held back until the first is answered, so they reach the broker in order.
    assert not second.done() and len(coordinator.sent) == 1
    coordinator.answers[0].set_result(None)
    await asyncio.wait_for(second, 1)
    await asyncio.sleep(0)
    assert [
        offsets[TopicPartition("xiezuo.intake.clues", 0)].offset for offsets in coordinator.sent
    ] == [2, 3]
    coordinator.answers[1].set_result(None)
    await asyncio.wait_for(commits.settle(), 1)


async def test_a_failed_commit_is_logged_and_does_not_stop_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    coordinator = _Coordinator()
    commits = OffsetCommits("xiezuo-cases")
    await commits.commit(coordinator, [_record(0, 0)])
    await asyncio.sleep(0)
    # A rebalance took the partition: the records will come again and the inbox skips them.
    coordinator.answers[0].set_exception(CommitFailedError("rebalanced"))
    with caplog.at_level(logging.WARNING, logger="services.runtime.bus"):
        await asyncio.wait_for(commits.commit(coordinator, [_record(0, 1)]), 1)
    assert any("offset commit failed" in r.getMessage() for r in caplog.records)
    await asyncio.sleep(0)
    assert len(coordinator.sent) == 2
    coordinator.answers[1].set_result(None)
    await commits.settle()
