"""Reading a working-calendar file (YAML), every problem reported with its line."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from services.working_calendar.model import (
    DEFAULT_TIME_ZONE,
    WEEKDAYS,
    CalendarYear,
    WorkingCalendar,
)

NATIONAL_CALENDAR_FILE = Path(__file__).with_name("cn_national.yaml")
_TOP_KEYS = frozenset({"name", "time_zone", "weekend", "years"})
_YEAR_KEYS = frozenset({"source", "provisional", "holidays", "working_days"})
# A holiday run longer than this is a typing error (the longest, Spring Festival, is 9 days).
_LONGEST_RUN_DAYS = 15


class CalendarInvalid(ValueError):
    """A calendar file that cannot be used; `errors` lists every problem as `line N: what`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def load_calendar(path: Path) -> WorkingCalendar:
    """The calendar a file declares; CalendarInvalid names the file and each bad line."""
    try:
        return parse_calendar(path.read_text(encoding="utf-8"))
    except CalendarInvalid as invalid:
        raise CalendarInvalid([f"{path}: {error}" for error in invalid.errors]) from None


def parse_calendar(text: str) -> WorkingCalendar:
    """The calendar a YAML document declares, or CalendarInvalid listing every error by line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise CalendarInvalid([f"line {line}: not valid YAML: {exc}"]) from exc
    reader = _Reader()
    calendar = reader.calendar(root)
    if reader.errors or calendar is None:
        raise CalendarInvalid(reader.errors or ["line 1: the file declares no calendar"])
    return calendar


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Reader:
    """Walks the YAML nodes (not plain data) so that each error can name its line."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, node: yaml.Node, what: str) -> None:
        self.errors.append(f"line {_line(node)}: {what}")

    def calendar(self, root: yaml.Node | None) -> WorkingCalendar | None:
        if not isinstance(root, yaml.MappingNode):
            self.errors.append("line 1: the file must be a mapping with name, weekend, years")
            return None
        fields = self.mapping(root, _TOP_KEYS, "")
        name = self.text(fields.get("name"), "name", root)
        time_zone = self.time_zone(fields.get("time_zone"))
        weekend = self.weekend(fields.get("weekend"))
        years_node = fields.get("years")
        years: dict[int, CalendarYear] = {}
        if not isinstance(years_node, yaml.MappingNode) or not years_node.value:
            self.error(years_node or root, "years: must map each year to its holidays")
        else:
            for key, value in years_node.value:
                year = self.year(key, value, weekend)
                if year is None:
                    continue
                if year.year in years:
                    self.error(key, f"years: {year.year} is listed twice")
                years[year.year] = year
            listed = sorted(years)
            # A gap would leave a year inside the range that nothing describes.
            for before, after in pairwise(listed):
                if after != before + 1:
                    self.error(years_node, f"years: {before + 1}..{after - 1} missing between")
        return WorkingCalendar(name=name, years=years, weekend=weekend, time_zone=time_zone)

    def mapping(
        self, node: yaml.MappingNode, keys: frozenset[str], where: str
    ) -> dict[str, yaml.Node]:
        fields: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if key.value not in keys:
                self.error(
                    key, f"{where}{key.value}: unknown key (expected {', '.join(sorted(keys))})"
                )
                continue
            fields[str(key.value)] = value
        return fields

    def text(self, node: yaml.Node | None, what: str, parent: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            self.error(node or parent, f"{what}: must be a non-empty text")
            return ""
        return str(node.value)

    def time_zone(self, node: yaml.Node | None) -> str:
        """The county's IANA zone (Asia/Shanghai when the file names none)."""
        if node is None:
            return DEFAULT_TIME_ZONE
        name = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # ValueError: not a relative key ('', '../x'); OSError: a folder such as 'Asia'.
            shown = repr(name) if isinstance(node, yaml.ScalarNode) else "a list or mapping"
            self.error(
                node, f"time_zone: {shown} is not an IANA time zone (e.g. {DEFAULT_TIME_ZONE})"
            )
            return DEFAULT_TIME_ZONE
        return name

    def weekend(self, node: yaml.Node | None) -> frozenset[int]:
        if node is None:
            return frozenset({5, 6})
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"weekend: must list days among {', '.join(WEEKDAYS)}")
            return frozenset({5, 6})
        days: set[int] = set()
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode) or item.value not in WEEKDAYS:
                self.error(item, f"weekend: {item.value!r} is not one of {', '.join(WEEKDAYS)}")
                continue
            days.add(WEEKDAYS.index(item.value))
        return frozenset(days)

    def year(self, key: yaml.Node, node: yaml.Node, weekend: frozenset[int]) -> CalendarYear | None:
        if not isinstance(key, yaml.ScalarNode) or not str(key.value).isdigit():
            self.error(key, f"years: {key.value!r} is not a year")
            return None
        year = int(key.value)
        if not 2000 <= year <= 2100:
            self.error(key, f"years: {year} is not a plausible year")
            return None
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"years.{year}: must be a mapping of {', '.join(sorted(_YEAR_KEYS))}")
            return None
        fields = self.mapping(node, _YEAR_KEYS, f"years.{year}.")
        source = self.text(fields.get("source"), f"years.{year}.source", node)
        provisional = False
        if "provisional" in fields:
            flag = fields["provisional"]
            if not (isinstance(flag, yaml.ScalarNode) and flag.tag.endswith(":bool")):
                self.error(flag, f"years.{year}.provisional: must be true or false")
            else:
                provisional = flag.value.lower() == "true"
        holidays = self.days(fields.get("holidays"), year, f"years.{year}.holidays", node)
        working = self.days(fields.get("working_days"), year, f"years.{year}.working_days", node)
        for day, where in sorted(working.items()):
            if day.weekday() not in weekend:
                self.error(
                    where,
                    f"{day.isoformat()} is a weekday: only a weekend day is made a working day",
                )
            if day in holidays:
                self.error(where, f"{day.isoformat()} is both a holiday and a working day")
        return CalendarYear(
            year=year,
            source=source,
            holidays=frozenset(holidays),
            working_days=frozenset(working),
            provisional=provisional,
        )

    def days(
        self, node: yaml.Node | None, year: int, where: str, parent: yaml.Node
    ) -> dict[date, yaml.Node]:
        """Dates and [first, last] runs, each day with the node it came from."""
        if node is None:
            self.error(parent, f"{where}: missing (an empty list [] if there are none)")
            return {}
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{where}: must be a list of dates and [first, last] runs")
            return {}
        days: dict[date, yaml.Node] = {}
        for item in node.value:
            for day in self.run(item, where):
                if day.year != year:
                    self.error(item, f"{where}: {day.isoformat()} is not in {year}")
                elif day in days:
                    self.error(item, f"{where}: {day.isoformat()} is listed twice")
                days[day] = item
        return days

    def run(self, item: yaml.Node, where: str) -> list[date]:
        if isinstance(item, yaml.SequenceNode):
            ends = [self.date(end, where) for end in item.value]
            if len(ends) != 2:
                self.error(item, f"{where}: a run is [first, last], two dates")
                return []
            first, last = ends
            if first is None or last is None:
                return []
            if last < first or (last - first).days >= _LONGEST_RUN_DAYS:
                self.error(
                    item,
                    f"{where}: [{first}, {last}] is not a run of at most {_LONGEST_RUN_DAYS} days",
                )
                return []
            return [first + timedelta(days=n) for n in range((last - first).days + 1)]
        day = self.date(item, where)
        return [] if day is None else [day]

    def date(self, node: yaml.Node, where: str) -> date | None:
        if isinstance(node, yaml.ScalarNode):
            try:
                return date.fromisoformat(str(node.value))
            except ValueError:
                pass
        value = node.value if isinstance(node, yaml.ScalarNode) else "a list"
        self.error(node, f"{where}: {value!r} is not a date (YYYY-MM-DD)")
        return None
