"""`python -m services.working_calendar FILE...`: check calendar files, print each one's years."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from services.working_calendar.file import CalendarInvalid, load_calendar
from services.working_calendar.settings import coverage_warnings


def main(paths: list[str]) -> int:
    """0 when every file is valid; 1 with every error by line otherwise."""
    failed = False
    for path in paths or ["-"]:
        if path == "-":
            print("usage: python -m services.working_calendar FILE...", file=sys.stderr)
            return 2
        try:
            calendar = load_calendar(Path(path))
        except (CalendarInvalid, OSError) as exc:
            failed = True
            for error in getattr(exc, "errors", [str(exc)]):
                print(error, file=sys.stderr)
            continue
        print(f"{path}: days are counted on {calendar.time_zone} dates")
        for year in sorted(calendar.years):
            data = calendar.years[year]
            flag = " (provisional)" if data.provisional else ""
            print(
                f"{path}: {year}{flag}: {len(data.holidays)} holidays, "
                f"{len(data.working_days)} adjusted working days — {data.source}"
            )
        for warning in coverage_warnings(calendar, date.today()):
            print(f"{path}: warning: {warning}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
