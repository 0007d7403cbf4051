"""Joint investigations (联合审查调查): kinds, outcomes, share bounds and the steps of each side.

Pure rules, no I/O. The network's agreements say which kinds two counties investigate
together; the joint-case rule file says how many people each county may put in (min..max,
the default when the opener names none).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

# AssistanceTeamRequested.team_size's bound: no share is larger.
SHARE_CEILING = 20
GROUND_MAX = 1000


class JointKind(enum.StrEnum):
    """What the two counties investigate together."""

    DISCIPLINE = "discipline"  # 违纪审查
    DUTY_VIOLATION = "duty_violation"  # 职务违法调查
    DUTY_CRIME = "duty_crime"  # 职务犯罪调查


class JointOutcome(enum.StrEnum):
    """How a joint case ends; the only thing about its result that crosses."""

    CONCLUDED = "concluded"  # 审查调查终结
    REFERRED = "referred"  # 移送审查起诉
    WITHDRAWN = "withdrawn"  # 撤销


class Role(enum.StrEnum):
    """A side's part in the joint case."""

    OPENER = "opener"
    PARTNER = "partner"
    CITY = "city"


class State(enum.StrEnum):
    """A side's state: opened/received → accepted | declined → closed."""

    OPENED = "opened"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CLOSED = "closed"


OPEN_STATES = frozenset({State.OPENED, State.RECEIVED, State.ACCEPTED})


class JointStepRefused(ValueError):
    """The step does not fit the side's role or state."""


def check_accept(role: str, state: str) -> None:
    """A partner joins once, from `received`."""
    if role != Role.PARTNER:
        raise JointStepRefused("only a county asked to join accepts or declines")
    if state != State.RECEIVED:
        raise JointStepRefused(f"the joint case is already {state}")


def check_close(role: str, state: str) -> None:
    """A county closes a joint case it is in once joined; the opener may withdraw before."""
    if role == Role.CITY:
        raise JointStepRefused("the counties close a joint case, not the city")
    if state not in (State.OPENED, State.ACCEPTED):
        raise JointStepRefused(f"the joint case is {state}; nothing to close")


@dataclass(frozen=True)
class KindRule:
    """One kind's label and the bounds of each county's share."""

    kind: JointKind
    label: str
    min_share: int
    max_share: int
    default_share: int


@dataclass(frozen=True)
class JointRules:
    """The versioned joint-case rule file."""

    version: int
    rules: Mapping[JointKind, KindRule]

    def rule(self, kind: JointKind) -> KindRule:
        """The rule of `kind` (every kind has one: the loader checks it)."""
        return self.rules[kind]

    def share(self, kind: JointKind, asked: int) -> int:
        """The share asked (0: the kind's default), or ValueError naming the bounds."""
        rule = self.rule(kind)
        if asked == 0:
            return rule.default_share
        if not rule.min_share <= asked <= rule.max_share:
            raise ValueError(
                f"a {kind.value} joint case takes {rule.min_share}..{rule.max_share} people "
                "from each county"
            )
        return asked


class JointRulesInvalid(ValueError):
    """A rule file that cannot be used; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _count(body: Mapping[str, object], name: str, where: str, errors: list[str]) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= SHARE_CEILING:
        errors.append(f"{where}.{name}: must be 1..{SHARE_CEILING}")
        return 1
    return value


def parse_joint_rules(text: str) -> JointRules:
    """The rules a YAML document declares, or JointRulesInvalid listing every error."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise JointRulesInvalid(["the file must be a mapping with version and kinds"])
    errors: list[str] = []
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        errors.append("version: must be a positive integer")
        version = 0
    kinds = document.get("kinds")
    if not isinstance(kinds, dict):
        raise JointRulesInvalid([*errors, "kinds: must map each kind to its rule"])
    rules: dict[JointKind, KindRule] = {}
    for name, body in kinds.items():
        where = f"kinds.{name}"
        try:
            kind = JointKind(name)
        except ValueError:
            errors.append(f"{where}: unknown kind ({', '.join(k.value for k in JointKind)})")
            continue
        if not isinstance(body, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        low = _count(body, "min_share", where, errors)
        high = _count(body, "max_share", where, errors)
        default = _count(body, "default_share", where, errors)
        if not low <= default <= high:
            errors.append(f"{where}: needs min_share <= default_share <= max_share")
        rules[kind] = KindRule(kind, str(body.get("label", name)), low, high, default)
    errors += [f"kinds.{kind.value}: missing" for kind in JointKind if kind not in rules]
    if errors:
        raise JointRulesInvalid(errors)
    return JointRules(version=version, rules=rules)
