"""How `catch-up --workers` deals a backlog's partitions, adds up its workers' progress, and
tunes the garbage collector while it runs."""

from __future__ import annotations

import gc

import pytest
from aiokafka.structs import TopicPartition

from services.assessment.rebuild import (
    CATCH_UP_GC_YOUNG,
    RebuildProgress,
    collecting_per_batch,
    collector_paused,
    deal_partitions,
)


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


def test_a_worker_keeps_its_first_commit_and_moves_its_last() -> None:
    progress = RebuildProgress()
    progress.record_commit(500)
    first = progress.first_commit_at
    assert first is not None and progress.last_commit_at == first
    progress.record_commit(200)
    assert progress.first_commit_at == first and progress.first_commit_records == 500
    assert progress.last_commit_at is not None and progress.last_commit_at >= first


def test_the_first_commit_of_any_worker_and_the_last_time_the_whole_rebuild() -> None:
    early = RebuildProgress(first_commit_at=100.0, first_commit_records=500, last_commit_at=130.0)
    late = RebuildProgress(first_commit_at=101.0, first_commit_records=300, last_commit_at=131.5)
    total = RebuildProgress()
    total.add(late)
    total.add(early)
    # The first commit covered only that worker's first batch; the rest is timed after it.
    assert (total.first_commit_at, total.first_commit_records) == (100.0, 500)
    assert total.last_commit_at == 131.5
    # A worker that committed nothing changes neither end.
    total.add(RebuildProgress())
    assert (total.first_commit_at, total.first_commit_records, total.last_commit_at) == (
        100.0,
        500,
        131.5,
    )


def test_a_catch_up_collects_young_objects_per_batch_and_puts_the_thresholds_back() -> None:
    before = gc.get_threshold()
    with collecting_per_batch():
        assert gc.get_threshold() == (CATCH_UP_GC_YOUNG, *before[1:])
        assert gc.isenabled()
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), collecting_per_batch():
        raise RuntimeError("a failed batch")
    assert gc.get_threshold() == before


def test_the_collector_is_paused_while_a_batch_holds_the_write_lock_and_resumes_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a failed batch")
    assert gc.isenabled()
    # A process that had switched the collector off keeps it off.
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
