"""Allegation categories as versioned data: a county edits the file, not the code."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class TaxonomyInvalid(ValueError):
    """The taxonomy data is malformed; the service must not start with it."""


@dataclass(frozen=True)
class Category:
    """One allegation category (e.g. poverty-alleviation funds)."""

    code: str
    label: str
    # The supervision domain it belongs to (livelihood, environment, ...), used by triage.
    domain: str


@dataclass(frozen=True)
class Taxonomy:
    """One version of the category list, in force from `effective_from`."""

    version: str
    effective_from: date
    categories: Mapping[str, Category]

    def unknown(self, codes: Sequence[str]) -> list[int]:
        """Indexes of well-formed codes that this version does not know."""
        return [
            i for i, code in enumerate(codes) if _CODE.match(code) and code not in self.categories
        ]


def parse_taxonomies(data: Any) -> list[Taxonomy]:
    """Validate the data file's content: versions, dates, unique well-formed codes."""
    if not isinstance(data, Mapping) or not isinstance(data.get("versions"), list):
        raise TaxonomyInvalid("expected a mapping with a 'versions' list")
    versions: list[Taxonomy] = []
    for index, raw in enumerate(data["versions"]):
        where = f"versions[{index}]"
        if not isinstance(raw, Mapping):
            raise TaxonomyInvalid(f"{where} must be a mapping")
        version, effective = raw.get("version"), raw.get("effective_from")
        if not isinstance(version, str) or not version:
            raise TaxonomyInvalid(f"{where}.version must be a non-empty string")
        if not isinstance(effective, date):
            raise TaxonomyInvalid(f"{where}.effective_from must be a date (YYYY-MM-DD)")
        categories: dict[str, Category] = {}
        for position, item in enumerate(raw.get("categories") or []):
            spot = f"{where}.categories[{position}]"
            if not isinstance(item, Mapping):
                raise TaxonomyInvalid(f"{spot} must be a mapping")
            code = item.get("code")
            if not isinstance(code, str) or not _CODE.match(code):
                raise TaxonomyInvalid(f"{spot}.code must be a lower_snake_case code")
            if code in categories:
                raise TaxonomyInvalid(f"{spot}.code {code!r} appears twice")
            label, domain = item.get("label"), item.get("domain")
            if not isinstance(label, str) or not label or not isinstance(domain, str) or not domain:
                raise TaxonomyInvalid(f"{spot} needs a label and a domain")
            categories[code] = Category(code, label, domain)
        if not categories:
            raise TaxonomyInvalid(f"{where} has no categories")
        versions.append(Taxonomy(version, effective, categories))
    if len({v.version for v in versions}) != len(versions):
        raise TaxonomyInvalid("two versions share a name")
    if not versions:
        raise TaxonomyInvalid("no versions")
    return versions


def taxonomy_in_force(versions: Sequence[Taxonomy], on: date) -> Taxonomy:
    """The newest version effective on `on`."""
    candidates = [version for version in versions if version.effective_from <= on]
    if not candidates:
        raise LookupError(f"no allegation taxonomy is in force on {on.isoformat()}")
    return max(candidates, key=lambda version: version.effective_from)
