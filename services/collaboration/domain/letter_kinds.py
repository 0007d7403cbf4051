"""Kinds of assistance letter and the allowlist of fields each may carry to another county."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

# Longest value of one field, the question and the excerpt: a letter is a request, not a file.
FIELD_MAX = 500
QUESTION_MAX = 2000
EXCERPT_MAX = 2000
# Names no kind may ever list, whatever the rule file says.
FORBIDDEN_PREFIXES = ("reporter_", "informant_")
FORBIDDEN_FIELDS = frozenset({"report_text", "report_id", "receipt_code", "other_subjects"})


class LetterKind(enum.StrEnum):
    """What the requesting county asks the other to do."""

    VERIFY_FACT = "verify_fact"
    WITNESS_STATEMENT = "witness_statement"
    REGISTRY_CHECK = "registry_check"
    LOCATE_PERSON = "locate_person"
    OTHER = "other"


@dataclass(frozen=True)
class KindRule:
    """One kind's allowlist and its due period."""

    kind: LetterKind
    label: str
    working_days: int
    excerpt_allowed: bool
    fields: frozenset[str]
    # People the asked county's staffing draws for an accepted letter of this kind.
    team_size: int = 2


@dataclass(frozen=True)
class LetterKinds:
    """The versioned allowlist of every kind."""

    version: int
    rules: Mapping[LetterKind, KindRule]

    def rule(self, kind: LetterKind) -> KindRule:
        """The rule of `kind` (every kind has one: the loader checks it)."""
        return self.rules[kind]


class LetterKindsInvalid(ValueError):
    """A kinds file that cannot be used; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def forbidden_field(name: str) -> bool:
    """Whether a field name is one that may never cross (a reporter's identity, the report)."""
    return name in FORBIDDEN_FIELDS or name.startswith(FORBIDDEN_PREFIXES)


def allowlisted_fields(value: object, where: str, errors: list[str]) -> list[str]:
    """The field names an allowlist lists; each way it is unusable is added to `errors`.

    Both allowlists (letter kinds, transfers) load their fields through here, so the names
    that may never cross are refused the same way whatever file lists them.
    """
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        errors.append(f"{where}: must be a list of field names")
        return []
    errors += [
        f"{where}: {name} may never cross to another county"
        for name in value
        if forbidden_field(name)
    ]
    return value


def field_problems(
    allowed: frozenset[str], fields: Mapping[str, str], what: str
) -> list[tuple[str, str]]:
    """(field, problem) for each field outside `allowed` (for `what`), empty or too long."""
    problems: list[tuple[str, str]] = []
    for name, value in sorted(fields.items()):
        if name not in allowed:
            listed = ", ".join(sorted(allowed))
            problems.append((f"fields[{name[:64]}]", f"not allowed for {what} (allowed: {listed})"))
        elif not value.strip():
            problems.append((f"fields[{name}]", "must not be empty"))
        elif len(value) > FIELD_MAX:
            problems.append((f"fields[{name}]", f"at most {FIELD_MAX} characters"))
    return problems


def parse_letter_kinds(text: str) -> LetterKinds:
    """The allowlists a YAML document declares, or LetterKindsInvalid listing every error."""
    document = yaml.safe_load(text)
    errors: list[str] = []
    if not isinstance(document, dict):
        raise LetterKindsInvalid(["the file must be a mapping with version and kinds"])
    version = document.get("version")
    if not isinstance(version, int) or version < 1:
        errors.append("version: must be a positive integer")
        version = 0
    kinds = document.get("kinds")
    if not isinstance(kinds, dict):
        raise LetterKindsInvalid([*errors, "kinds: must map each kind to its rule"])
    rules: dict[LetterKind, KindRule] = {}
    for name, body in kinds.items():
        try:
            kind = LetterKind(name)
        except ValueError:
            errors.append(f"kinds.{name}: unknown kind")
            continue
        if not isinstance(body, dict):
            errors.append(f"kinds.{name}: must be a mapping")
            continue
        fields = allowlisted_fields(body.get("fields"), f"kinds.{name}.fields", errors)
        days = body.get("working_days")
        if not isinstance(days, int) or not 1 <= days <= 60:
            errors.append(f"kinds.{name}.working_days: must be 1..60")
            days = 1
        team_size = body.get("team_size", 2)
        if (
            not isinstance(team_size, int)
            or isinstance(team_size, bool)
            or not 1 <= team_size <= 20
        ):
            errors.append(f"kinds.{name}.team_size: must be 1..20")
            team_size = 2
        rules[kind] = KindRule(
            kind=kind,
            label=str(body.get("label", name)),
            working_days=days,
            excerpt_allowed=body.get("excerpt") is True,
            fields=frozenset(fields),
            team_size=team_size,
        )
    errors += [f"kinds.{kind.value}: missing" for kind in LetterKind if kind not in rules]
    if errors:
        raise LetterKindsInvalid(errors)
    return LetterKinds(version=version, rules=rules)


def content_problems(
    rule: KindRule, *, question: str, fields: Mapping[str, str], excerpt: str
) -> list[tuple[str, str]]:
    """(field, problem) for every way a letter's content breaks its kind's allowlist."""
    problems: list[tuple[str, str]] = []
    if not question.strip():
        problems.append(("question", "must be set"))
    elif len(question) > QUESTION_MAX:
        problems.append(("question", f"at most {QUESTION_MAX} characters"))
    problems += field_problems(rule.fields, fields, rule.kind.value)
    if excerpt:
        if not rule.excerpt_allowed:
            problems.append(("excerpt", f"{rule.kind.value} letters carry no excerpt"))
        elif len(excerpt) > EXCERPT_MAX:
            problems.append(("excerpt", f"at most {EXCERPT_MAX} characters"))
    return problems
