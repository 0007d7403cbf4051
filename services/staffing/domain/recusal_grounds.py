"""Recusal grounds (回避) as rule data: codes, labels and the articles they come from.

Read from YAML with every problem reported by line, like the county file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import yaml

_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TOP_KEYS = frozenset({"version", "grounds"})
_GROUND_KEYS = frozenset({"code", "label", "sources"})
# Reports one problem at the node's line.
_Error = Callable[[yaml.Node, str], None]


class RecusalGroundsInvalid(ValueError):
    """A grounds file that cannot be used; `errors` lists every problem as `line N: what`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class RecusalGround:
    """One reason a staff member stands aside, with the rules it rests on."""

    code: str
    label: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class RecusalGrounds:
    """The grounds a county recognises, by code."""

    version: str
    by_code: Mapping[str, RecusalGround] = field(default_factory=dict)

    def __contains__(self, code: object) -> bool:
        return code in self.by_code

    def __iter__(self) -> Iterator[RecusalGround]:
        return iter(self.by_code.values())

    def problem_with(self, code: str) -> str:
        """Why `code` cannot be used ("" when it can)."""
        if code in self.by_code:
            return ""
        return f"is not a recusal ground of rules {self.version} ({', '.join(self.by_code)})"


def parse_recusal_grounds(text: str) -> RecusalGrounds:
    """The grounds a YAML document declares, or RecusalGroundsInvalid listing every error."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RecusalGroundsInvalid([f"line {line}: not valid YAML: {exc}"]) from exc
    errors: list[str] = []

    def error(node: yaml.Node, what: str) -> None:
        errors.append(f"line {node.start_mark.line + 1}: {what}")

    if not isinstance(root, yaml.MappingNode):
        raise RecusalGroundsInvalid(["line 1: the file must be a mapping with version, grounds"])
    fields = _fields(root, _TOP_KEYS, "", error)
    version = _text(fields.get("version"), "version", root, error)
    grounds: dict[str, RecusalGround] = {}
    listed = fields.get("grounds")
    if not isinstance(listed, yaml.SequenceNode) or not listed.value:
        error(listed or root, "grounds: must list at least one ground")
    else:
        for index, node in enumerate(listed.value):
            where = f"grounds[{index}]"
            if not isinstance(node, yaml.MappingNode):
                error(node, f"{where}: must be a mapping of code, label, sources")
                continue
            ground = _ground(node, where, error)
            if ground is None:
                continue
            if ground.code in grounds:
                error(node, f"{where}.code: {ground.code!r} is listed twice")
            grounds[ground.code] = ground
    if errors:
        raise RecusalGroundsInvalid(errors)
    return RecusalGrounds(version=version, by_code=grounds)


def _fields(
    node: yaml.MappingNode, keys: frozenset[str], where: str, error: _Error
) -> dict[str, yaml.Node]:
    fields: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if key.value not in keys:
            error(key, f"{where}{key.value}: unknown key (expected {', '.join(sorted(keys))})")
            continue
        fields[str(key.value)] = value
    return fields


def _text(node: yaml.Node | None, what: str, parent: yaml.Node, error: _Error) -> str:
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        error(node or parent, f"{what}: must be a non-empty text")
        return ""
    return str(node.value).strip()


def _ground(node: yaml.MappingNode, where: str, error: _Error) -> RecusalGround | None:
    fields = _fields(node, _GROUND_KEYS, f"{where}.", error)
    code = _text(fields.get("code"), f"{where}.code", node, error)
    label = _text(fields.get("label"), f"{where}.label", node, error)
    if code and not _CODE.fullmatch(code):
        error(fields["code"], f"{where}.code: {code!r} must be lower_snake_case, 1..64 characters")
        code = ""
    sources_node = fields.get("sources")
    sources: list[str] = []
    if not isinstance(sources_node, yaml.SequenceNode) or not sources_node.value:
        # A ground with no rule behind it cannot be explained to the person it removes.
        error(sources_node or node, f"{where}.sources: must cite at least one article or rule")
    else:
        for item in sources_node.value:
            text = _text(item, f"{where}.sources", sources_node, error)
            if text:
                sources.append(text)
    if not (code and label and sources):
        return None
    return RecusalGround(code=code, label=label, sources=tuple(sources))
