"""The county network file (YAML): members, the city commission, keys, agreements.

Every problem is reported with its line (`line N: what`), like the county and calendar files,
and a file with any problem is refused as a whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.collaboration.domain.joint_case import JointKind
from services.collaboration.domain.letter_kinds import LetterKind

_LINE = "__line__"
_TOP_KEYS = frozenset({"network", "version", "city_commission", "counties", "agreements"})
_COUNTY_KEYS = frozenset({"county_id", "name", "public_key", "calendar"})
_CITY_KEYS = frozenset({"id", "name", "public_key"})
_AGREEMENT_KEYS = frozenset({"counties", "kinds", "joint_kinds"})
_ID_MAX = 64


class NetworkFileInvalid(ValueError):
    """The file cannot be imported; `errors` lists every problem as `line N: what`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} error(s) in the network file")
        self.errors = errors


@dataclass(frozen=True)
class MemberCounty:
    """One county of the network and the key its letters are signed with."""

    county_id: str
    name: str
    public_key_pem: str
    # The county's working-day calendar (YAML text) or None for the national one.
    calendar_text: str | None = None

    def public_key(self) -> Ed25519PublicKey:
        """The county's verification key (checked when the file was read)."""
        key = serialization.load_pem_public_key(self.public_key_pem.encode("ascii"))
        assert isinstance(key, Ed25519PublicKey)
        return key


@dataclass(frozen=True)
class Agreement:
    """Counties that help each other with these kinds of letter."""

    counties: frozenset[str]
    kinds: frozenset[LetterKind]
    # Kinds of joint investigation (联合审查调查) these counties open together.
    joint_kinds: frozenset[JointKind] = frozenset()


@dataclass(frozen=True)
class Network:
    """One version of the network."""

    network_id: str
    version: int
    city_id: str
    city_name: str
    counties: tuple[MemberCounty, ...]
    agreements: tuple[Agreement, ...]
    # The city commission's PEM public key: what it signs (a joint case it opens) is checked
    # against it; None: nothing the city sends is accepted.
    city_public_key_pem: str | None = None

    def city_public_key(self) -> Ed25519PublicKey | None:
        """The city commission's verification key, if the network lists one."""
        if self.city_public_key_pem is None:
            return None
        key = serialization.load_pem_public_key(self.city_public_key_pem.encode("ascii"))
        assert isinstance(key, Ed25519PublicKey)
        return key

    def covers_joint(self, first: str, second: str, kind: JointKind) -> bool:
        """Whether an agreement lets the two counties investigate this kind together."""
        pair = {first, second}
        return first != second and any(
            pair <= agreement.counties and kind in agreement.joint_kinds
            for agreement in self.agreements
        )

    def member(self, county_id: str) -> MemberCounty | None:
        """The member county with this id, if any."""
        return next((c for c in self.counties if c.county_id == county_id), None)

    def covers(self, from_county: str, to_county: str, kind: LetterKind) -> bool:
        """Whether an agreement lets `from_county` ask `to_county` for this kind of help."""
        pair = {from_county, to_county}
        return from_county != to_county and any(
            pair <= agreement.counties and kind in agreement.kinds for agreement in self.agreements
        )

    def to_json(self) -> str:
        """The network as stored (one row per version)."""
        return json.dumps(
            {
                "network_id": self.network_id,
                "version": self.version,
                "city_id": self.city_id,
                "city_name": self.city_name,
                "counties": [vars(county) for county in self.counties],
                "agreements": [
                    {
                        "counties": sorted(a.counties),
                        "kinds": sorted(k.value for k in a.kinds),
                        "joint_kinds": sorted(k.value for k in a.joint_kinds),
                    }
                    for a in self.agreements
                ],
                "city_public_key": self.city_public_key_pem,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Network:
        """A stored network."""
        data = json.loads(text)
        return cls(
            network_id=data["network_id"],
            version=data["version"],
            city_id=data["city_id"],
            city_name=data["city_name"],
            counties=tuple(MemberCounty(**county) for county in data["counties"]),
            agreements=tuple(
                Agreement(
                    counties=frozenset(a["counties"]),
                    kinds=frozenset(LetterKind(k) for k in a["kinds"]),
                    joint_kinds=frozenset(JointKind(k) for k in a.get("joint_kinds", ())),
                )
                for a in data["agreements"]
            ),
            city_public_key_pem=data.get("city_public_key"),
        )


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping (as the county file does)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


def parse_network(
    text: str, *, read_calendar: Callable[[str], str] | None = None
) -> tuple[Network, str]:
    """The network a YAML document declares and the file's sha256, or NetworkFileInvalid.

    `read_calendar` turns a county's `calendar:` entry into the calendar's YAML text, raising
    ValueError with the reason when it cannot (the caller resolves paths and parses).
    """
    try:
        document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise NetworkFileInvalid([f"line {line}: not valid YAML: {exc}"]) from exc
    if not isinstance(document, dict):
        raise NetworkFileInvalid(
            [
                "line 1: the file must be a mapping with network, version, city_commission, "
                "counties, agreements"
            ]
        )
    reader = _Reader(read_calendar)
    network = reader.read(document)
    if reader.errors or network is None:
        raise NetworkFileInvalid(reader.errors or ["line 1: the file declares no network"])
    return network, hashlib.sha256(text.encode()).hexdigest()


def _line_of(raw: Any, default: int = 1) -> int:
    return int(raw.get(_LINE, default)) if isinstance(raw, dict) else default


class _Reader:
    """Collects every error instead of stopping at the first."""

    def __init__(self, read_calendar: Callable[[str], str] | None) -> None:
        self.errors: list[str] = []
        self._read_calendar = read_calendar

    def error(self, line: int, what: str) -> None:
        self.errors.append(f"line {line}: {what}")

    def keys(self, raw: dict[str, Any], allowed: frozenset[str], where: str) -> None:
        line = _line_of(raw)
        for key in raw:
            if key != _LINE and key not in allowed:
                self.error(
                    line, f"{where}{key}: unknown key (expected {', '.join(sorted(allowed))})"
                )

    def ident(self, raw: dict[str, Any], key: str, where: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > _ID_MAX:
            self.error(_line_of(raw), f"{where}{key}: must be a text of 1..{_ID_MAX} characters")
            return ""
        return value

    def read(self, document: dict[str, Any]) -> Network | None:
        self.keys(document, _TOP_KEYS, "")
        network_id = self.ident(document, "network", "")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.error(1, "version: must be a positive integer")
            version = 0
        city = document.get("city_commission")
        city_id = city_name = ""
        city_pem: str | None = None
        city_key: bytes | None = None
        if not isinstance(city, dict):
            self.error(1, "city_commission: must be a mapping with id and name")
        else:
            self.keys(city, _CITY_KEYS, "city_commission.")
            city_id = self.ident(city, "id", "city_commission.")
            city_name = self.ident(city, "name", "city_commission.")
            if city.get("public_key") is not None:
                city_key = self.public_key(
                    city.get("public_key"), _line_of(city), "city_commission."
                )
                if city_key is not None:
                    city_pem = str(city["public_key"]).strip() + "\n"
        counties = self.counties(document.get("counties"))
        ids = {county.county_id for county in counties}
        if city_id and city_id in ids:
            self.error(_line_of(city), f"city_commission.id: {city_id!r} is also a county id")
        if city_key is not None and any(
            county.public_key().public_bytes_raw() == city_key for county in counties
        ):
            self.error(_line_of(city), "city_commission.public_key: the same key as a county's")
        agreements = self.agreements(document.get("agreements"), ids)
        return Network(
            network_id=network_id,
            version=version,
            city_id=city_id,
            city_name=city_name,
            counties=tuple(counties),
            agreements=tuple(agreements),
            city_public_key_pem=city_pem,
        )

    def counties(self, raw: Any) -> list[MemberCounty]:
        if not isinstance(raw, list) or len(raw) < 2:
            self.error(1, "counties: must list at least two member counties")
            return []
        found: list[MemberCounty] = []
        seen: dict[str, int] = {}
        keys_seen: dict[bytes, str] = {}
        for index, item in enumerate(raw):
            where = f"counties[{index}]."
            if not isinstance(item, dict):
                self.error(1, f"counties[{index}]: expected a mapping")
                continue
            line = _line_of(item)
            self.keys(item, _COUNTY_KEYS, where)
            county_id = self.ident(item, "county_id", where)
            name = self.ident(item, "name", where)
            if county_id in seen:
                self.error(
                    line,
                    f"{where}county_id: {county_id!r} is already listed on line {seen[county_id]}",
                )
            elif county_id:
                seen[county_id] = line
            pem = item.get("public_key")
            raw_key = self.public_key(pem, line, where)
            if raw_key is not None:
                if raw_key in keys_seen:
                    self.error(line, f"{where}public_key: the same key as {keys_seen[raw_key]!r}")
                keys_seen[raw_key] = county_id
            calendar_text = self.calendar(item.get("calendar"), line, where)
            if county_id and name and raw_key is not None and isinstance(pem, str):
                found.append(MemberCounty(county_id, name, pem.strip() + "\n", calendar_text))
        return found

    def public_key(self, pem: Any, line: int, where: str) -> bytes | None:
        if not isinstance(pem, str) or not pem.strip():
            self.error(line, f"{where}public_key: must be a PEM public key")
            return None
        try:
            key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            self.error(line, f"{where}public_key: not a PEM public key")
            return None
        if not isinstance(key, Ed25519PublicKey):
            self.error(line, f"{where}public_key: not an Ed25519 key")
            return None
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def calendar(self, entry: Any, line: int, where: str) -> str | None:
        if entry is None:
            return None
        if not isinstance(entry, str) or not entry.strip():
            self.error(line, f"{where}calendar: must name a calendar file")
            return None
        if self._read_calendar is None:
            self.error(line, f"{where}calendar: calendar files cannot be read here")
            return None
        try:
            return self._read_calendar(entry)
        except ValueError as exc:
            self.error(line, f"{where}calendar: {exc}")
            return None

    def agreements(self, raw: Any, county_ids: set[str]) -> list[Agreement]:
        if not isinstance(raw, list) or not raw:
            self.error(1, "agreements: must list at least one agreement")
            return []
        found: list[Agreement] = []
        for index, item in enumerate(raw):
            where = f"agreements[{index}]."
            if not isinstance(item, dict):
                self.error(1, f"agreements[{index}]: expected a mapping")
                continue
            line = _line_of(item)
            self.keys(item, _AGREEMENT_KEYS, where)
            members, kinds = item.get("counties"), item.get("kinds")
            joint_kinds = self.joint_kinds(item.get("joint_kinds"), line, where)
            if not isinstance(members, list) or len(set(map(str, members))) < 2:
                self.error(line, f"{where}counties: must name at least two member counties")
                members = []
            for member in members:
                if str(member) not in county_ids:
                    self.error(line, f"{where}counties: {member!r} is not a listed county")
            chosen: set[LetterKind] = set()
            if not isinstance(kinds, list) or not kinds:
                self.error(line, f"{where}kinds: must list the kinds of help it covers")
                kinds = []
            for kind in kinds:
                try:
                    chosen.add(LetterKind(str(kind)))
                except ValueError:
                    accepted = ", ".join(k.value for k in LetterKind)
                    self.error(line, f"{where}kinds: {kind!r} is not a kind ({accepted})")
            found.append(Agreement(frozenset(map(str, members)), frozenset(chosen), joint_kinds))
        return found

    def joint_kinds(self, raw: Any, line: int, where: str) -> frozenset[JointKind]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, list):
            self.error(line, f"{where}joint_kinds: must list kinds of joint investigation")
            return frozenset()
        chosen: set[JointKind] = set()
        for kind in raw:
            try:
                chosen.add(JointKind(str(kind)))
            except ValueError:
                accepted = ", ".join(k.value for k in JointKind)
                self.error(line, f"{where}joint_kinds: {kind!r} is not a kind ({accepted})")
        return frozenset(chosen)
