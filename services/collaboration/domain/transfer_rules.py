"""The allowlist of a clue transfer or designation: which fields may cross, as versioned data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from services.collaboration.domain.letter_kinds import (
    EXCERPT_MAX,
    allowlisted_fields,
    field_problems,
)

MODES = ("transfer", "designation")


@dataclass(frozen=True)
class ModeRule:
    """One mode's allowlist."""

    mode: str
    label: str
    excerpt_allowed: bool
    required: frozenset[str]
    fields: frozenset[str]


@dataclass(frozen=True)
class TransferRules:
    """The versioned allowlist of both modes."""

    version: int
    rules: Mapping[str, ModeRule]

    def rule(self, mode: str) -> ModeRule:
        """The rule of `mode` (the loader checks both exist)."""
        return self.rules[mode]


class TransferRulesInvalid(ValueError):
    """A transfer rule file that cannot be used; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _names(body: Mapping[str, object], key: str, where: str, errors: list[str]) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.append(f"{where}.{key}: must be a list of field names")
        return []
    return value


def parse_transfer_rules(text: str) -> TransferRules:
    """The allowlists a YAML document declares, or TransferRulesInvalid listing every error."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or not isinstance(document.get("modes"), dict):
        raise TransferRulesInvalid(["the file must be a mapping with version and modes"])
    errors: list[str] = []
    version = document.get("version")
    if not isinstance(version, int) or version < 1:
        errors.append("version: must be a positive integer")
        version = 0
    rules: dict[str, ModeRule] = {}
    for mode, body in document["modes"].items():
        where = f"modes.{mode}"
        if mode not in MODES:
            errors.append(f"{where}: unknown mode")
            continue
        if not isinstance(body, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        fields = allowlisted_fields(body.get("fields", []), f"{where}.fields", errors)
        required = _names(body, "required", where, errors)
        errors += [
            f"{where}.required: {name} is not in fields" for name in required if name not in fields
        ]
        rules[mode] = ModeRule(
            mode=mode,
            label=str(body.get("label", mode)),
            excerpt_allowed=body.get("excerpt") is True,
            required=frozenset(required),
            fields=frozenset(fields),
        )
    errors += [f"modes.{mode}: missing" for mode in MODES if mode not in rules]
    if errors:
        raise TransferRulesInvalid(errors)
    return TransferRules(version=version, rules=rules)


def transfer_problems(
    rule: ModeRule, *, fields: Mapping[str, str], excerpt: str
) -> list[tuple[str, str]]:
    """(field, problem) for every way a transfer's content breaks its mode's allowlist."""
    problems = field_problems(rule.fields, fields, rule.mode)
    problems += [(f"fields[{name}]", "must be set") for name in sorted(rule.required - set(fields))]
    if excerpt:
        if not rule.excerpt_allowed:
            problems.append(("excerpt", f"a {rule.mode} carries no excerpt"))
        elif len(excerpt) > EXCERPT_MAX:
            problems.append(("excerpt", f"at most {EXCERPT_MAX} characters"))
    return problems
