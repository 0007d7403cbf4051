"""Page strings: `locale/<page>.<lang>.yaml` files merged into one catalogue per language.

Each page owns its own pair of files; nested keys are joined with dots (`case.title`). A key
defined by two files is an error at start-up (two pages would silently fight over it), so
prefix keys with the page's name. A key missing in English falls back to Chinese, then to the
key itself, so a missing translation shows up as its key rather than as nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from services.console.settings import LANGUAGES

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
FALLBACK = "zh"

Translate = Callable[..., str]


class LocaleError(Exception):
    """A locale file is malformed or redefines another file's key."""


class Catalogue:
    """Every page's strings, by language."""

    def __init__(self, strings: Mapping[str, Mapping[str, str]]) -> None:
        self._strings = {lang: dict(table) for lang, table in strings.items()}

    @classmethod
    def load(cls, directory: Path = LOCALE_DIR) -> Catalogue:
        """Read and merge every `<page>.<lang>.yaml` in directory."""
        strings: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        origins: dict[tuple[str, str], Path] = {}
        for path in sorted(directory.glob("*.yaml")):
            parts = path.name.split(".")
            if len(parts) != 3 or parts[1] not in LANGUAGES:
                raise LocaleError(f"{path.name}: expected <page>.<zh|en>.yaml")
            lang = parts[1]
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise LocaleError(f"{path.name}: expected a mapping of keys to strings")
            for key, text in _flat("", data, path):
                earlier = origins.get((lang, key))
                if earlier is not None:
                    raise LocaleError(f"{path.name}: key {key!r} is already in {earlier.name}")
                origins[(lang, key)] = path
                strings[lang][key] = text
        return cls(strings)

    def text(self, lang: str, key: str, **values: Any) -> str:
        """The string for key in lang (else Chinese, else the key), formatted with values."""
        found = self._strings.get(lang, {}).get(key)
        if found is None:
            found = self._strings.get(FALLBACK, {}).get(key, key)
        if values:
            try:
                return found.format(**values)
            except (KeyError, IndexError, ValueError):
                return found
        return found

    def translator(self, lang: str) -> Translate:
        """`t(key, **values)` bound to one language, for templates and pages."""

        def t(key: str, **values: Any) -> str:
            return self.text(lang, key, **values)

        return t

    def keys(self, lang: str) -> set[str]:
        """Every key defined for lang (for tests comparing the two languages)."""
        return set(self._strings.get(lang, {}))


def _flat(prefix: str, data: Mapping[Any, Any], path: Path) -> list[tuple[str, str]]:
    """(dotted key, string) pairs of a nested mapping."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            pairs.extend(_flat(f"{dotted}.", value, path))
        elif isinstance(value, str | int | float):
            pairs.append((dotted, str(value)))
        else:
            raise LocaleError(f"{path.name}: {dotted!r} is not a string")
    return pairs
