"""Live progress of the scenario: one bar per zone, then cases and assessment catching up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn


class LiveProgress:
    """Rich bars redrawn in place a few times a second (no line per event)."""

    def __init__(
        self,
        console: Console,
        *,
        per_zone: Counter[str],
        clues: int,
        names: Mapping[str, str] | None = None,
    ) -> None:
        # Zones are shown by name (第一协作区), never by id.
        self._names = dict(names or {})
        self._progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            refresh_per_second=4,
        )
        self._zones: dict[str, TaskID] = {
            zone: self._progress.add_task(
                f"reports submitted, {self._names.get(zone, zone)}", total=count
            )
            for zone, count in sorted(per_zone.items())
        }
        self._registered = self._progress.add_task("clues registered in cases", total=clues)
        self._projected = self._progress.add_task("clues projected by assessment", total=clues)
        # One bar per workflow stage, added as the first clue reaches it.
        self._stages: dict[str, TaskID] = {}
        # Files with a deadline in its warning period or past due, per zone (added when known).
        self._risk: TaskID | None = None
        self._clues = clues
        self._console = console

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def phase(self, text: str) -> None:
        """Printed above the bars, once per step."""
        self._progress.console.print(f"[cyan]demo:[/cyan] {text} ...")

    def submitted(self, zone_id: str) -> None:
        """One more report of the zone registered by intake."""
        task = self._zones.get(zone_id)
        if task is not None:
            self._progress.advance(task)

    def registered(self, count: int) -> None:
        """Clues of the scenario now on cases' ledger."""
        self._progress.update(self._registered, completed=count)

    def projected(self, count: int) -> None:
        """Clues counted by assessment."""
        self._progress.update(self._projected, completed=count)

    def staged(self, stages: Mapping[str, int]) -> None:
        """Cases by stage: how many of the scenario's clues stand in each stage now."""
        for stage in stages:
            if stage not in self._stages:
                self._stages[stage] = self._progress.add_task(
                    f"cases in stage {stage}", total=self._clues
                )
        for stage, task in self._stages.items():
            self._progress.update(task, completed=stages.get(stage, 0))

    def at_risk(self, zones: Mapping[str, int]) -> None:
        """Deadlines at risk: the total as a bar, each zone's count beside it."""
        total = sum(zones.values())
        per_zone = "  ".join(
            f"{self._names.get(zone, zone)} {count}" for zone, count in sorted(zones.items())
        )
        description = f"deadlines at risk ({per_zone})"
        if self._risk is None:
            self._risk = self._progress.add_task(description, total=self._clues)
        self._progress.update(self._risk, description=description, completed=total)
