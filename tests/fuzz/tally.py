"""The fuzz run's count of answers by status code, kept on the pytest config for the summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

# One tally per database the services ran on ("SQLite", "PostgreSQL").
TALLY_KEY = pytest.StashKey[dict[str, "Tally"]]()


@dataclass
class Tally:
    """Answers by status code and by RPC, row checks made, and seconds spent calling."""

    by_code: Counter[str] = field(default_factory=Counter)
    by_rpc: Counter[str] = field(default_factory=Counter)
    row_checks: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def add(self, rpc: str, code: str) -> None:
        self.by_code[code] += 1
        self.by_rpc[rpc] += 1
        # From the first fixture use to the last answer: the other pass's time is not counted.
        self.seconds = time.monotonic() - self.started

    def lines(self) -> list[str]:
        total = sum(self.by_code.values())
        lines = [
            f"{total} calls over {len(self.by_rpc)} RPCs in {self.seconds:.1f} s; "
            f"{self.row_checks} rejected calls checked for changed rows"
        ]
        lines += [f"  {code:<20} {count:>7}" for code, count in self.by_code.most_common()]
        return lines
