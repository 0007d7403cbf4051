"""SQLite's write-ahead log folded back into the database file beside the writers.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that
commit copies every page the log holds into the database file before it returns, so one
request or one consumer batch in a few pays for everyone's writes (at a consumer's batch
rate, more than half of a commit's time, bench/README.md). A service instead raises the
writers' threshold to a safety net and runs PASSIVE checkpoints from a connection of its own
on a worker thread: a PASSIVE checkpoint takes no lock a writer or reader waits for, copies
what no reader still needs, and lets the next writer start the log from the top again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalState:
    """One checkpoint's outcome: frames in the log, and how many of them are in the file."""

    frames: int
    checkpointed: int


class WalCheckpointer:
    """Checkpoints one SQLite database's log every `interval` seconds until stopped."""

    def __init__(
        self,
        path: Path,
        *,
        interval: float,
        on_checkpoint: Callable[[int | None], None] | None = None,
    ) -> None:
        """`on_checkpoint`: told the frames each pass left in the log, or None when it failed."""
        if interval <= 0:
            raise ValueError("a WAL checkpoint interval must be positive")
        self.path = path
        self.interval = interval
        self._on_checkpoint = on_checkpoint or (lambda _pages: None)
        self._stop = asyncio.Event()
        self._connection: sqlite3.Connection | None = None

    async def run(self) -> None:
        """Checkpoint, wait, repeat; a failed pass is logged and the next one tries again."""
        try:
            while not self._stop.is_set():
                try:
                    state = await self.checkpoint()
                except sqlite3.Error as exc:
                    # A checkpoint left undone only leaves the log longer: the writers'
                    # own threshold still bounds it.
                    log.warning("WAL checkpoint failed", extra={"error": str(exc)})
                    self._on_checkpoint(None)
                else:
                    # What a reader still needed stays in the log until a later pass.
                    self._on_checkpoint(state.frames - state.checkpointed)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)
        finally:
            await self.close()

    def stop(self) -> None:
        """End `run` after the pass in progress."""
        self._stop.set()

    async def checkpoint(self) -> WalState:
        """One PASSIVE checkpoint, on a worker thread (it writes and syncs the file)."""
        return await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> WalState:
        if self._connection is None:
            # Autocommit, and usable from whichever worker thread runs the next pass.
            # mode=rw: a database that is not there yet is not created empty by this.
            self._connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        _busy, frames, checkpointed = row
        # -1, -1 when the database is not in WAL mode (yet): nothing to fold back.
        return WalState(frames=max(frames, 0), checkpointed=max(checkpointed, 0))

    async def close(self) -> None:
        """Close the checkpointer's connection (`run` does when it ends)."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
