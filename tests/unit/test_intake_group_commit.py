"""Group commit's queue: groups form from what waited, failures send items to write alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.intake.store.group_commit import QUIET_TURNS, GroupCommit, WriteAlone


async def test_what_queues_while_a_group_is_written_forms_the_next_group() -> None:
    groups: list[list[int]] = []
    release, writing = asyncio.Event(), asyncio.Event()

    async def write(items: Sequence[int]) -> list[int | None]:
        groups.append(list(items))
        writing.set()
        await release.wait()
        # An odd item is undone by its group: its caller writes it alone.
        return [None if item % 2 else item * 10 for item in items]

    writer: GroupCommit[int, int] = GroupCommit(write, max_group=3)
    first = asyncio.ensure_future(writer.write(0))
    await writing.wait()
    rest = [asyncio.ensure_future(writer.write(n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 0
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert groups == [[0], [1, 2, 3], [4, 5]]
    assert [type(o) if isinstance(o, Exception) else o for o in outcomes] == [
        WriteAlone,
        20,
        WriteAlone,
        40,
        WriteAlone,
    ]


async def test_a_caller_a_few_turns_behind_joins_the_group() -> None:
    groups: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int | None]:
        groups.append(list(items))
        return list(items)

    writer: GroupCommit[int, int] = GroupCommit(write)
    first = asyncio.ensure_future(writer.write(0))
    # A call still being parsed or looked up reaches the queue some turns of the loop later.
    for _ in range(QUIET_TURNS // 2):
        await asyncio.sleep(0)
    second = asyncio.ensure_future(writer.write(1))
    assert await asyncio.gather(first, second) == [0, 1]
    assert groups == [[0, 1]]


async def test_a_group_waits_only_its_quiet_turns_for_latecomers() -> None:
    groups: list[list[int]] = []

    async def write(items: Sequence[int]) -> list[int | None]:
        groups.append(list(items))
        return list(items)

    writer: GroupCommit[int, int] = GroupCommit(write, quiet_turns=4)
    first = asyncio.ensure_future(writer.write(0))
    # Past its four quiet turns the first group has gone; the latecomer forms the next.
    for _ in range(8):
        await asyncio.sleep(0)
    second = asyncio.ensure_future(writer.write(1))
    assert await asyncio.gather(first, second) == [0, 1]
    assert groups == [[0], [1]]


async def test_a_failed_group_sends_every_item_to_write_alone() -> None:
    async def write(items: Sequence[int]) -> list[int | None]:
        raise RuntimeError("commit failed")

    writer: GroupCommit[int, int] = GroupCommit(write)
    outcomes = await asyncio.gather(*(writer.write(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(outcome, WriteAlone) for outcome in outcomes)


async def test_a_cancelled_writer_leaves_no_caller_waiting() -> None:
    started = asyncio.Event()

    async def write(items: Sequence[int]) -> list[int | None]:
        started.set()
        await asyncio.Event().wait()
        return list(items)

    writer: GroupCommit[int, int] = GroupCommit(write)
    waiting = [asyncio.ensure_future(writer.write(n)) for n in range(2)]
    await started.wait()
    later = asyncio.ensure_future(writer.write(9))
    await asyncio.sleep(0)
    assert writer._drainer is not None
    writer._drainer.cancel()
    for call in [*waiting, later]:
        with pytest.raises(WriteAlone):
            await call
