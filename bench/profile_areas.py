"""Intake's busy samples by area, from a py-spy profile that ``pipeline.py --profile`` kept.

Run: ``.venv/bin/python bench/profile_areas.py DIR/<step>-intake.txt [--top-unplaced 10]``.

``pipeline.py`` prints the functions in most samples; this groups the same samples (those not
caught waiting, by ``pipeline.py``'s own rule) into the parts of a report's way through intake,
so a profile answers "how much of intake is gRPC, how much is the write group". Each sample
goes to the first area whose test matches its stack. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent)]

from pipeline import _waiting  # noqa: E402  (bench/ is not a package)

Frames = list[str]


def _any(frames: Frames, *starts: str) -> bool:
    return any(frame.startswith(starts) for frame in frames)


def _in_thread(frames: Frames) -> bool:
    return frames[0].startswith("Thread._bootstrap")


AREAS: list[tuple[str, Callable[[Frames], bool]]] = [
    (
        "SQLite in aiosqlite's worker thread (C, off the loop)",
        lambda f: _in_thread(f) and _any(f, "_connection_worker_thread"),
    ),
    ("other threads (WAL checkpoints, metrics endpoint)", _in_thread),
    (
        "write group: report rows, duplicate candidates, township gates",
        lambda f: _any(f, "GroupCommit._drain"),
    ),
    (
        "call path: interceptors, validation, sealing, receipt, SubmitReport",
        lambda f: any("intercept" in frame for frame in f) or _any(f, "IntakeServicer"),
    ),
    (
        "outbox relay and Kafka producer",
        lambda f: _any(f, "OutboxRelay", "Sender.", "AIOKafka"),
    ),
    (
        "gRPC core callbacks on the loop (C: no Python frame under Handle._run)",
        lambda f: f[-1].startswith("Handle._run"),
    ),
    # SQLAlchemy runs a statement in a greenlet whose stack starts afresh, on the loop's thread.
    (
        "SQL statement path in SQLAlchemy's greenlets (the loop's thread)",
        lambda f: f != [""] and not f[0].startswith("_run_module_as_main"),
    ),
    ("no Python frame (C code of the process)", lambda f: f == [""]),
    ("event loop: selecting and scheduling", lambda f: _any(f, "BaseEventLoop", "Handle._run")),
]


def areas(path: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Busy samples in all, per area, and the unplaced ones by their last three frames."""
    busy = 0
    placed: collections.Counter[str] = collections.Counter()
    unplaced: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        raw = stack.split(";")
        if _waiting(raw[-1]):
            continue
        count = int(count_text)
        busy += count
        frames = [frame.split(" (")[0] for frame in raw]
        area = next((name for name, matches in AREAS if matches(frames)), None)
        if area is None:
            unplaced[";".join(frames[-3:])] += count
        else:
            placed[area] += count
    return busy, placed, unplaced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="collapsed stacks kept by pipeline.py --profile")
    parser.add_argument("--top-unplaced", type=int, default=10)
    args = parser.parse_args()
    busy, placed, unplaced = areas(args.profile)
    print(f"{args.profile}: {busy} busy samples (waiting ones left out)")
    for name, count in placed.most_common():
        print(f"{100 * count / max(busy, 1):5.1f} %  {count:6d}  {name}")
    left = sum(unplaced.values())
    print(f"{100 * left / max(busy, 1):5.1f} %  {left:6d}  not placed; most of them:")
    for stack, count in unplaced.most_common(args.top_unplaced):
        print(f"         {count:6d}  {stack}")


if __name__ == "__main__":
    main()
