"""Time spent in CPython's cyclic garbage collector, per process, for benchmarks.

Put this directory first on PYTHONPATH and name a file in ``BENCH_GC_STATS``; every
Python process started with that environment (services, spawned workers) then appends a line
to the file every two seconds: pid, command tail, process CPU seconds so far, and per
generation the collections, the thread CPU seconds they took and the objects they freed.
The last line of each pid is its total. Example (bench/README.md, "Session 19")::

    BENCH_GC_STATS=/tmp/gc.log PYTHONPATH=bench/gcstat \\
        .venv/bin/python bench/assessment_replay.py --events 0 --consumer-events 0 \\
        --live-events 100000 --rebuild-workers 2

Without the variable it does nothing. Never part of a service's runtime. The name has no
``XIEZUO_`` prefix on purpose: ``pipeline.py`` passes its services no stray ``XIEZUO_`` setting.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

_PATH = os.environ.get("BENCH_GC_STATS")


def _install(path: str) -> None:
    # generation -> [collections, thread CPU seconds, objects freed]
    totals = {generation: [0, 0.0, 0] for generation in range(3)}
    began = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        # The collector runs on whichever thread allocated; thread time excludes GIL waits.
        if phase == "start":
            began[0] = time.thread_time()
            return
        entry = totals[info["generation"]]
        entry[0] += 1
        entry[1] += time.thread_time() - began[0]
        entry[2] += info["collected"]

    gc.callbacks.append(timed)
    command = " ".join(sys.argv[-2:])

    def report() -> None:
        # A daemon thread of its own, never a service's event loop: its sleep blocks only it.
        while True:
            time.sleep(2)
            per_generation = " ".join(
                f"gen{generation}={count}/{seconds:.3f}s/{freed}"
                for generation, (count, seconds, freed) in totals.items()
            )
            line = f"{os.getpid()} {command!r} cpu={time.process_time():.2f}s {per_generation}\n"
            with open(path, "a", encoding="utf-8") as out:
                out.write(line)

    threading.Thread(target=report, name="gc-stats", daemon=True).start()


if _PATH:
    _install(_PATH)
