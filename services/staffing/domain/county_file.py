"""Reading a whole county from its YAML file: every bad row reported with its line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.staffing.domain.registry import (
    Person,
    PersonStatus,
    Role,
    StatusPeriod,
    Township,
    Village,
    Zone,
)

_LINE = "__line__"


class CountyFileInvalid(Exception):
    """The file cannot be loaded; `errors` lists every problem as `line N: what`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} error(s) in the county file")
        self.errors = errors


@dataclass(frozen=True)
class CountyRegistry:
    """Everything one county file declares."""

    county_id: str
    name: str
    skills: frozenset[str]
    zones: tuple[Zone, ...]
    townships: tuple[Township, ...]
    villages: tuple[Village, ...]
    people: tuple[Person, ...]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_line(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {key: value for key, value in values.items() if key != _LINE}
        return values


class _County(_Row):
    county_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)


class _Village(_Row):
    village_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)


class _Township(_Row):
    township_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    effective_from: date
    villages: list[dict[str, Any]] = Field(default_factory=list)


class _Zone(_Row):
    zone_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    chief: str | None = None
    deputy: str | None = None
    townships: list[dict[str, Any]] = Field(default_factory=list)


class _Status(_Row):
    status: PersonStatus
    start: date
    end: date | None = None


class _Person(_Row):
    person_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1)
    roles: list[Role] = Field(min_length=1)
    home_township: str | None = None
    village: str | None = None
    skills: list[str] = Field(default_factory=list)
    workload_cap: int = Field(default=3, ge=0, le=50)
    statuses: list[_Status] = Field(default_factory=list)


_RowT = TypeVar("_RowT", bound="_Row")


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


def parse_county(text: str) -> CountyRegistry:
    """The county the file declares, or CountyFileInvalid listing every error by line."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise CountyFileInvalid([f"line {line}: not valid YAML: {exc}"]) from exc
    if not isinstance(document, dict):
        raise CountyFileInvalid(["line 1: the file must be a mapping with county, zones, people"])
    return _Reader().read(document)


class _Reader:
    """Collects every error instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def read(self, document: dict[str, Any]) -> CountyRegistry:
        county = self._row(_County, document.get("county"), "county", document.get(_LINE, 1))
        skills = frozenset(str(skill) for skill in document.get("skills") or [])
        county_id = county.county_id if county else ""
        zones: list[Zone] = []
        townships: list[Township] = []
        villages: list[Village] = []
        ids: dict[str, int] = {}
        zone_rows = document.get("zones") or []
        for index, raw_zone in enumerate(zone_rows):
            zone = self._row(_Zone, raw_zone, f"zones[{index}]", _line_of(raw_zone))
            if zone is None:
                continue
            self._unique(ids, zone.zone_id, _line_of(raw_zone))
            zones.append(Zone(zone.zone_id, county_id, zone.name, zone.chief, zone.deputy))
            for t_index, raw_township in enumerate(zone.townships):
                where = f"zones[{index}].townships[{t_index}]"
                township = self._row(_Township, raw_township, where, _line_of(raw_township))
                if township is None:
                    continue
                self._unique(ids, township.township_id, _line_of(raw_township))
                townships.append(
                    Township(
                        township.township_id,
                        county_id,
                        zone.zone_id,
                        township.name,
                        township.effective_from,
                    )
                )
                for v_index, raw_village in enumerate(township.villages):
                    village = self._row(
                        _Village, raw_village, f"{where}.villages[{v_index}]", _line_of(raw_village)
                    )
                    if village is None:
                        continue
                    self._unique(ids, village.village_id, _line_of(raw_village))
                    villages.append(Village(village.village_id, township.township_id, village.name))
        zone_of = {township.township_id: township.zone_id for township in townships}
        township_of_village = {village.village_id: village.township_id for village in villages}
        people: list[Person] = []
        for index, raw_person in enumerate(document.get("people") or []):
            line = _line_of(raw_person)
            if isinstance(raw_person, dict) and raw_person.get("person_id"):
                self._unique(ids, str(raw_person["person_id"]), line)
            row = self._row(_Person, raw_person, f"people[{index}]", line)
            if row is None:
                continue
            person = self._person(row, county_id, zone_of, township_of_village, skills, line)
            if person is not None:
                people.append(person)
        self._check_leaders(zones, people, document)
        if not zones:
            self.errors.append("line 1: zones: the county has no zones")
        if self.errors:
            raise CountyFileInvalid(self.errors)
        assert county is not None
        return CountyRegistry(
            county_id=county.county_id,
            name=county.name,
            skills=skills,
            zones=tuple(zones),
            townships=tuple(townships),
            villages=tuple(villages),
            people=tuple(people),
        )

    def _person(
        self,
        row: _Person,
        county_id: str,
        zone_of: dict[str, str],
        township_of_village: dict[str, str],
        skills: frozenset[str],
        line: int,
    ) -> Person | None:
        before = len(self.errors)
        where = f"line {line}: person {row.person_id}"
        if row.home_township is not None and row.home_township not in zone_of:
            self.errors.append(f"{where}: unknown home_township {row.home_township!r}")
        for skill in row.skills:
            if skill not in skills:
                self.errors.append(f"{where}: skill {skill!r} is not in the county's skills")
        if Role.VILLAGE_INFORMANT in row.roles:
            if row.village is None:
                self.errors.append(f"{where}: a village informant needs a village")
            elif row.village not in township_of_village:
                self.errors.append(f"{where}: unknown village {row.village!r}")
            elif row.home_township not in (None, township_of_village[row.village]):
                self.errors.append(f"{where}: village {row.village} is not in {row.home_township}")
        for status in row.statuses:
            if status.end is not None and status.end < status.start:
                self.errors.append(f"{where}: status {status.status.value} ends before it starts")
        if len(self.errors) > before:
            return None
        home = row.home_township
        if home is None and row.village is not None:
            home = township_of_village.get(row.village)
        return Person(
            person_id=row.person_id,
            county_id=county_id,
            name=row.name,
            roles=frozenset(row.roles),
            home_township_id=home,
            zone_id=zone_of.get(home) if home else None,
            skills=frozenset(row.skills),
            statuses=tuple(StatusPeriod(s.status, s.start, s.end) for s in row.statuses),
            workload_cap=row.workload_cap,
            village_id=row.village,
        )

    def _check_leaders(
        self, zones: list[Zone], people: list[Person], document: dict[str, Any]
    ) -> None:
        by_id = {person.person_id: person for person in people}
        lines = {
            zone.get("zone_id"): _line_of(zone)
            for zone in document.get("zones") or []
            if isinstance(zone, dict)
        }
        for zone in zones:
            for field_name, leader, role in (
                ("chief", zone.chief_id, Role.ZONE_CHIEF),
                ("deputy", zone.deputy_id, Role.DEPUTY_CHIEF),
            ):
                if leader is None:
                    continue
                person = by_id.get(leader)
                where = f"line {lines.get(zone.zone_id, 1)}: zone {zone.zone_id}"
                if person is None:
                    self.errors.append(f"{where}: {field_name} {leader!r} is not a listed person")
                elif role not in person.roles:
                    self.errors.append(f"{where}: {field_name} {leader!r} lacks role {role.value}")

    def _row(self, model: type[_RowT], raw: Any, where: str, line: int) -> _RowT | None:
        if not isinstance(raw, dict):
            self.errors.append(f"line {line}: {where}: expected a mapping")
            return None
        values = {key: value for key, value in raw.items() if key != _LINE}
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                location = ".".join(str(part) for part in error["loc"])
                self.errors.append(f"line {line}: {where}.{location}: {error['msg']}")
            return None

    def _unique(self, ids: dict[str, int], identifier: str, line: int) -> None:
        if identifier in ids:
            self.errors.append(
                f"line {line}: id {identifier!r} is already used on line {ids[identifier]}"
            )
        else:
            ids[identifier] = line


def _line_of(raw: Any) -> int:
    return int(raw.get(_LINE, 1)) if isinstance(raw, dict) else 1
