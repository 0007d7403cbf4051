"""Group commit: concurrent submissions written together in one transaction, first come first.

Callers queue their item and wait; one drain task (alive only while the queue is not empty)
writes what has queued as one group, so a burst of N submissions costs one transaction, one
commit and no lock contention between this process's own writers. It sets no timer: before
each group it lets the event loop turn until no new item has arrived for `QUIET_TURNS` turns
in a row, so callers already on their way join. SQLite statements run on the loop itself
(runtime.sqlite_driver), so a group's writing gives nobody a turn; without this wait a group
held only what arrived during the previous commit (at 8 closed-loop clients, 2.5 reports a
group instead of 4, and a fifth fewer reports a second).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
log = logging.getLogger(__name__)
# How many turns of the event loop in a row without a new item end the wait for a group.
# A caller on its way (its request being parsed, its look-ups running) takes a few turns to
# reach the queue; a turn of an otherwise idle loop costs microseconds. 128 since session 19
# (bench/README.md): against 64, intake alone took 4-7 % more reports/s at 8 closed-loop
# clients and 9-16 % more at 16, and the pipeline accepted 443-448 of 450 offered a second
# (p99 250-357 ms) where 64 accepted 408-419 (p99 1.2-1.6 s); 32 and 16 were worse.
QUIET_TURNS = 128


class WriteAlone(Exception):
    """The group could not take this item; the caller writes it in its own transaction."""


class GroupCommit(Generic[Item, Result]):
    """Queues items and writes them in groups through `write_group`.

    `write_group` returns one result per item, or None for an item it undid (the caller then
    writes that one alone); if it raises, nothing of the group was committed and every item
    goes alone. `quiet_turns` is how many turns without a new item end the wait for a group.
    """

    def __init__(
        self,
        write_group: Callable[[Sequence[Item]], Awaitable[list[Result | None]]],
        *,
        max_group: int = 64,
        quiet_turns: int = QUIET_TURNS,
    ) -> None:
        self._write_group = write_group
        self._quiet_turns = quiet_turns
        self._max_group = max_group
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def write(self, item: Item) -> Result:
        """The item's result once its group has committed; WriteAlone if the group failed it."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drainer is None or self._drainer.done():
            # A task of its own: a caller that gives up must not strand the others' items.
            self._drainer = asyncio.create_task(self._drain(), name="intake-group-commit")
        return await future

    async def _gather(self) -> None:
        """Give callers already on their way a few turns of the loop to join the group."""
        quiet = 0
        while quiet < self._quiet_turns and len(self._queue) < self._max_group:
            before = len(self._queue)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._queue) == before else 0

    async def _drain(self) -> None:
        group: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                await self._gather()
                group = self._queue[: self._max_group]
                del self._queue[: self._max_group]
                try:
                    results = await self._write_group([item for item, _ in group])
                except Exception as failed:
                    # Nothing of it committed: each caller retries alone, where its error shows.
                    # Only the type is logged: a statement's parameters may hold report text.
                    log.warning(
                        "group commit failed (%s); its submissions are written one by one",
                        type(failed).__name__,
                    )
                    results = [None] * len(group)
                for (_, future), result in zip(group, results, strict=True):
                    if future.done():
                        continue
                    if result is None:
                        future.set_exception(WriteAlone())
                    else:
                        future.set_result(result)
        finally:
            # Cancelled mid-group (shutdown): nobody may wait for ever on what was not written.
            for _, future in [*group, *self._queue]:
                if not future.done():
                    future.set_exception(WriteAlone())
            self._queue.clear()
