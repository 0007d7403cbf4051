"""Prints the fuzz tally by status code at the end of a run that included the fuzz suite."""

from __future__ import annotations

import pytest

from tests.fuzz.tally import TALLY_KEY


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    tallies = config.stash.get(TALLY_KEY, {})
    for backend, tally in tallies.items():
        terminalreporter.section(f"gRPC fuzz on {backend}: answers by status code")
        for line in tally.lines():
            terminalreporter.write_line(line)
