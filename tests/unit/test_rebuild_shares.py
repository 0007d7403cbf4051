"""How `catch-up --workers` deals a backlog's partitions and adds up its workers' progress."""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition

from services.assessment.rebuild import RebuildProgress, deal_partitions


def _tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def test_partitions_are_dealt_largest_first_to_the_smallest_share() -> None:
    backlog = {
        _tp("clues", 0): 500,
        _tp("clues", 1): 400,
        _tp("clues", 2): 300,
        _tp("steps", 0): 200,
        _tp("steps", 1): 100,
        _tp("teams", 0): 0,
    }
    shares = deal_partitions(backlog, 2)
    # 500 | 400, then 300 to the 400 share (500 | 700), 200 to the 500 (700 | 700), 100 to
    # the first of the tie; the empty partition to nobody. Each share sorted.
    assert shares == [
        [("clues", 0), ("steps", 0), ("steps", 1)],
        [("clues", 1), ("clues", 2)],
    ]
    sizes = [sum(backlog[_tp(*tp)] for tp in share) for share in shares]
    assert sizes == [800, 700]


def test_every_partition_with_a_backlog_is_in_exactly_one_share() -> None:
    backlog = {_tp(f"topic-{t}", p): (t * 7 + p * 13) % 50 for t in range(9) for p in range(3)}
    for workers in (1, 2, 3, 8):
        shares = deal_partitions(backlog, workers)
        dealt = [tp for share in shares for tp in share]
        assert sorted(dealt) == sorted((tp.topic, tp.partition) for tp, n in backlog.items() if n)
        assert len(dealt) == len(set(dealt))
        assert len(shares) <= workers
        # The same backlog, however it is ordered, gives the same shares.
        assert deal_partitions(dict(reversed(list(backlog.items()))), workers) == shares


def test_more_workers_than_partitions_leaves_no_empty_share() -> None:
    assert deal_partitions({_tp("clues", 0): 5, _tp("clues", 1): 3}, 4) == [
        [("clues", 0)],
        [("clues", 1)],
    ]
    assert deal_partitions({_tp("clues", 0): 0}, 2) == []


def test_a_rebuild_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        deal_partitions({_tp("clues", 0): 5}, 0)


def test_progress_adds_the_workers_counts_but_not_their_seconds() -> None:
    total = RebuildProgress(records=10, applied=8, duplicates=2, batches=1, seconds=5.0)
    total.add(
        RebuildProgress(
            records=7,
            applied=4,
            ignored=1,
            dead_lettered=1,
            by_consumer=7,
            batches=2,
            seconds=4.0,
            reading_seconds=1.5,
            writing_seconds=2.0,
        )
    )
    assert total == RebuildProgress(
        records=17,
        applied=12,
        duplicates=2,
        ignored=1,
        dead_lettered=1,
        by_consumer=7,
        batches=3,
        seconds=5.0,
        reading_seconds=1.5,
        writing_seconds=2.0,
    )
