"""Reading a county's rule-set file (YAML) into a checked RuleSet, reporting every problem."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import yaml

from services.cases.domain.casefile import DECISION_KINDS
from services.cases.domain.ruleset import (
    DEFAULT_DECISION_SANCTIONS,
    DEFAULT_TEAM_SIZES,
    DecisionBody,
    DecisionSanctions,
    ExtensionRule,
    RuleSet,
    TimeLimit,
    TransitionRule,
)

# The subject cadre levels intake publishes; every approvals table must cover each of them.
CADRE_LEVELS = (
    "unknown",
    "village",
    "township",
    "county_section",
    "county_division",
    "other_public_employee",
)
# Actions added after counties may have written their files: available where a file names them.
OPTIONAL_ACTIONS = (
    "send_inquiry_letter",
    "record_inquiry_reply",
    "notify_unit",
    "record_procuratorate_decision",
    "request_retention",
    "approve_retention",
    "end_retention",
)
# Actions the workflow engine implements; a rule set must say who may take each of them.
ACTIONS = (
    "propose_disposal",
    "approve_disposal",
    "reject_proposal",
    "record_inquiry_outcome",
    "review_stored",
    "approve_plan",
    "sign_report",
    "propose_outcome",
    "approve_outcome",
    "approve_filing",
    "record_evidence",
    "record_subject_heard",
    "request_extension",
    "approve_extension",
    "submit_investigation_report",
    "accept_file",
    "defer_file",
    "refuse_file",
    "send_back",
    "submit_hearing_report",
    "approve_decision",
    "request_supplementary",
    "complete_supplementary",
    "file_appeal",
    "decide_appeal",
    *OPTIONAL_ACTIONS,
)
# Stages and time limits the engine refers to by name.
REQUIRED_STAGES = (
    "registered",
    "disposal_proposed",
    "inquiry",
    "verification",
    "verification_proposed",
    "stored_pending",
    "filing_proposed",
    "investigation",
    "hearing_pending",
    "hearing",
    "decision_proposed",
    "decided",
    "transferred",
    "supplementary",
    "appeal_first_review",
    "appeal_second_review",
    "closed",
)
REQUIRED_LIMITS = (
    "disposal",
    "investigation",
    "reinvestigation",
    "hearing",
    "appeal_first_review",
    "appeal_second_review",
    "supplementary",
    "rectification",
)
SANCTION_TRACKS = frozenset({"party", "government"})
# Approval names a transition may use that are not tables of their own.
# "appeal": the first review's table (appeal_review), the second's (appeal_second_review) when
# the file names one.
DERIVED_APPROVALS = frozenset({"plan", "extension", "any_pending", "appeal"})
REQUIRED_TABLES = (
    "disposal",
    "verification_plan",
    "verification_proposal",
    "filing",
    "investigation_plan",
    "decision",
    "appeal_review",
)
# Roles that act but never approve.
ACTING_ROLES = frozenset({"hearing_officer", "case_subject"})
# Stages the workflow draws a team for; a rule set's team_sizes names each of them.
TEAM_STAGES = ("verification", "investigation", "hearing", "review")
# Supervision Law (2018) art. 41: investigative measures are taken by at least two people;
# more than this is a typing error, not a team.
MIN_TEAM_SIZE, MAX_TEAM_SIZE = 2, 15


class RuleSetInvalid(ValueError):
    """A rule-set file that cannot be used; `problems` lists every reason with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_rule_set(text: str) -> RuleSet:
    """Parse and check a rule-set YAML document."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetInvalid([f"not YAML: {exc}"]) from exc
    if not isinstance(data, Mapping):
        raise RuleSetInvalid(["the document must be a mapping"])
    return parse_rule_set(data)


def parse_rule_set(data: Mapping[str, Any]) -> RuleSet:
    """A RuleSet from parsed YAML; raises RuleSetInvalid listing every problem found."""
    reader = _Reader()
    version = reader.text(data, "version")
    effective = data.get("effective_from")
    if not isinstance(effective, date):
        reader.problem("effective_from", "must be a date (YYYY-MM-DD)")
        effective = date.min
    stages = tuple(reader.names(data, "stages"))
    ladder = tuple(reader.names(data, "approval_ladder"))
    limits = reader.limits(data.get("time_limits"))
    tables = reader.approvals(data.get("approvals"), ladder)
    extensions = reader.extensions(data.get("extensions"), stages, ladder, tables)
    transitions = reader.transitions(data.get("transitions"), stages, ladder, tables)
    sanctions = reader.sanctions(data.get("sanction_effect_months"))
    decision_sanctions = reader.decision_sanctions(data.get("decision_sanctions"))
    bodies = reader.decision_bodies(data.get("decision_bodies", {}))
    retention = reader.retention(data.get("retention", {}), bodies, limits)
    measures = data.get("organisational_measures", [])
    if not isinstance(measures, list) or not all(isinstance(m, str) and m for m in measures):
        reader.problem("organisational_measures", "must be a list of measure names")
        measures = []
    collective = reader.collective(data.get("collective", {}), bodies, tables)
    team_sizes = reader.team_sizes(data.get("team_sizes"))
    rounds = data.get("max_supplementary_rounds")
    if not isinstance(rounds, int) or rounds < 0:
        reader.problem("max_supplementary_rounds", "must be a whole number ≥ 0")
        rounds = 0
    for stage in REQUIRED_STAGES:
        if stage not in stages:
            reader.problem("stages", f"lacks {stage!r}")
    for name in REQUIRED_LIMITS:
        if name not in limits:
            reader.problem("time_limits", f"lacks {name!r}")
    for action in ACTIONS:
        # Actions added after a county may have written its file are unavailable until named.
        if action not in transitions and action not in OPTIONAL_ACTIONS:
            reader.problem("transitions", f"lacks {action!r}")
    if "calendar" in data:
        # One calendar per county for every service: a second one here could disagree.
        reader.problem(
            "calendar",
            "holidays and working days live in the county's working calendar file "
            "(XIEZUO_WORKING_CALENDAR_FILE), not in the rule set: remove this section",
        )
    if reader.problems:
        raise RuleSetInvalid(reader.problems)
    disposal = limits["disposal"]
    return RuleSet(
        version=version,
        effective_from=effective,
        clue_disposal_months=disposal.months,
        description=str(data.get("description", "")),
        approval_ladder=ladder,
        stages=stages,
        time_limits=limits,
        extensions=extensions,
        max_supplementary_rounds=rounds,
        sanction_effect_months=sanctions,
        decision_sanctions=decision_sanctions,
        decision_bodies=bodies,
        organisational_measures=frozenset(measures),
        retention_body=retention[0],
        max_retention_extensions=retention[1],
        collective=collective,
        approvals=tables,
        transitions=transitions,
        team_sizes=team_sizes,
    )


class _Reader:
    """Collects problems while reading, so a county sees all of them at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, what: str) -> None:
        self.problems.append(f"{path}: {what}")

    def text(self, data: Mapping[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "must be a non-empty string")
            return ""
        return value

    def names(self, data: Mapping[str, Any], key: str) -> list[str]:
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
            self.problem(key, "must be a non-empty list of names")
            return []
        if len(set(value)) != len(value):
            self.problem(key, "has duplicates")
        return list(value)

    def limits(self, raw: Any) -> dict[str, TimeLimit]:
        if not isinstance(raw, Mapping):
            self.problem("time_limits", "must be a mapping")
            return {}
        limits: dict[str, TimeLimit] = {}
        for name, spec in raw.items():
            path = f"time_limits.{name}"
            if not isinstance(spec, Mapping):
                self.problem(path, "must be a mapping")
                continue
            unknown = set(spec) - {"months", "days", "working_days", "warn_days"}
            if unknown:
                self.problem(path, f"unknown keys {sorted(unknown)}")
            values = {k: spec.get(k, 0) for k in ("months", "days", "working_days", "warn_days")}
            if not all(isinstance(v, int) and v >= 0 for v in values.values()):
                self.problem(path, "values must be whole numbers ≥ 0")
                continue
            units = [k for k in ("months", "days", "working_days") if values[k]]
            if len(units) != 1:
                self.problem(path, "needs exactly one of months, days, working_days (> 0)")
                continue
            limits[str(name)] = TimeLimit(**values)
        return limits

    def approvals(self, raw: Any, ladder: tuple[str, ...]) -> dict[str, dict[str, tuple[str, ...]]]:
        if not isinstance(raw, Mapping):
            self.problem("approvals", "must be a mapping")
            return {}
        tables: dict[str, dict[str, tuple[str, ...]]] = {}
        for table, levels in raw.items():
            path = f"approvals.{table}"
            if not isinstance(levels, Mapping):
                self.problem(path, "must map cadre levels to approver lists")
                continue
            tables[str(table)] = {}
            for level in CADRE_LEVELS:
                chain = levels.get(level)
                if not isinstance(chain, list) or not chain:
                    self.problem(f"{path}.{level}", "must list at least one approver role")
                    continue
                for role in chain:
                    if role not in ladder:
                        self.problem(f"{path}.{level}", f"{role!r} is not on approval_ladder")
                tables[str(table)][level] = tuple(chain)
            for level in set(levels) - set(CADRE_LEVELS):
                self.problem(f"{path}.{level}", "is not a cadre level")
        for table in REQUIRED_TABLES:
            if table not in tables:
                self.problem("approvals", f"lacks {table!r}")
        return tables

    def extensions(
        self,
        raw: Any,
        stages: tuple[str, ...],
        ladder: tuple[str, ...],
        tables: Mapping[str, Any],
    ) -> dict[str, ExtensionRule]:
        if not isinstance(raw, Mapping):
            self.problem("extensions", "must be a mapping")
            return {}
        rules: dict[str, ExtensionRule] = {}
        for stage, spec in raw.items():
            path = f"extensions.{stage}"
            if stage not in stages:
                self.problem(path, "is not a stage")
            if not isinstance(spec, Mapping):
                self.problem(path, "must be a mapping")
                continue
            count, days = spec.get("max_count"), spec.get("max_days")
            approver, relative = spec.get("approver"), spec.get("relative_to", "")
            if not isinstance(count, int) or count < 0:
                self.problem(f"{path}.max_count", "must be a whole number ≥ 0")
                continue
            if not isinstance(days, int) or days < 1:
                self.problem(f"{path}.max_days", "must be a whole number ≥ 1")
                continue
            if approver == "one_level_up":
                if relative not in tables:
                    self.problem(f"{path}.relative_to", "must name an approvals table")
            elif approver not in ladder:
                self.problem(f"{path}.approver", "must be one_level_up or a ladder role")
            rules[str(stage)] = ExtensionRule(count, days, str(approver), str(relative))
        return rules

    def transitions(
        self,
        raw: Any,
        stages: tuple[str, ...],
        ladder: tuple[str, ...],
        tables: Mapping[str, Any],
    ) -> dict[str, TransitionRule]:
        if not isinstance(raw, Mapping):
            self.problem("transitions", "must be a mapping")
            return {}
        known_roles = set(ladder) | ACTING_ROLES
        rules: dict[str, TransitionRule] = {}
        for action, spec in raw.items():
            path = f"transitions.{action}"
            if action not in ACTIONS:
                self.problem(path, "is not an action the workflow knows")
            if not isinstance(spec, Mapping):
                self.problem(path, "must be a mapping")
                continue
            sources, targets = spec.get("from"), spec.get("to")
            roles, approval = spec.get("roles", []), spec.get("approval", "")
            for key, value in (("from", sources), ("to", targets), ("roles", roles)):
                if not isinstance(value, list):
                    self.problem(f"{path}.{key}", "must be a list")
            if not (isinstance(sources, list) and isinstance(targets, list)):
                continue
            for stage in [*sources, *targets]:
                if stage not in stages:
                    self.problem(path, f"{stage!r} is not a stage")
            if isinstance(roles, list):
                for role in roles:
                    if role not in known_roles:
                        self.problem(f"{path}.roles", f"{role!r} is not a known role")
            if bool(roles) == bool(approval):
                self.problem(path, "needs exactly one of roles, approval")
            if approval and approval not in tables and approval not in DERIVED_APPROVALS:
                self.problem(f"{path}.approval", f"{approval!r} is not an approvals table")
            rules[str(action)] = TransitionRule(
                action=str(action),
                from_stages=frozenset(sources),
                to_stages=frozenset(targets),
                roles=frozenset(roles if isinstance(roles, list) else []),
                approval=str(approval or ""),
                team=bool(spec.get("team", False)),
            )
        return rules

    def sanctions(self, raw: Any) -> dict[str, dict[str, int]]:
        if not isinstance(raw, Mapping) or set(raw) != {"party", "government"}:
            self.problem("sanction_effect_months", "must map party and government sanctions")
            return {}
        tracks: dict[str, dict[str, int]] = {}
        for track, table in raw.items():
            if not isinstance(table, Mapping) or not all(
                isinstance(v, int) and v >= 0 for v in table.values()
            ):
                self.problem(f"sanction_effect_months.{track}", "months must be whole numbers")
                continue
            tracks[str(track)] = {str(k): int(v) for k, v in table.items()}
        return tracks

    def decision_sanctions(self, raw: Any) -> dict[str, DecisionSanctions]:
        if raw is None:
            return dict(DEFAULT_DECISION_SANCTIONS)
        if not isinstance(raw, Mapping):
            self.problem("decision_sanctions", "must map decision kinds to requires/allows")
            return {}
        rules: dict[str, DecisionSanctions] = {}
        for kind, spec in raw.items():
            path = f"decision_sanctions.{kind}"
            if kind not in DECISION_KINDS:
                self.problem(path, f"is not a decision kind ({', '.join(sorted(DECISION_KINDS))})")
            if not isinstance(spec, Mapping) or set(spec) - {"requires", "allows"}:
                self.problem(path, "must be a mapping of requires and allows")
                continue
            tracks = {key: spec.get(key, []) for key in ("requires", "allows")}
            if not all(isinstance(v, list) and set(v) <= SANCTION_TRACKS for v in tracks.values()):
                self.problem(path, "requires and allows list tracks among party, government")
                continue
            if not set(tracks["requires"]) <= set(tracks["allows"]):
                self.problem(path, "a required track must also be allowed")
            rules[str(kind)] = DecisionSanctions(
                frozenset(tracks["requires"]), frozenset(tracks["allows"])
            )
        return rules

    def decision_bodies(self, raw: Any) -> dict[str, DecisionBody]:
        if not isinstance(raw, Mapping):
            self.problem("decision_bodies", "must map body ids to their rules")
            return {}
        bodies: dict[str, DecisionBody] = {}
        for body, spec in raw.items():
            path = f"decision_bodies.{body}"
            keys = {"name", "quorum_percent", "majority_percent", "members"}
            if not isinstance(spec, Mapping) or set(spec) - keys:
                self.problem(path, f"must be a mapping of {', '.join(sorted(keys))}")
                continue
            name, members = spec.get("name"), spec.get("members", [])
            shares = [spec.get(k, 50) for k in ("quorum_percent", "majority_percent")]
            if not isinstance(name, str) or not name.strip():
                self.problem(f"{path}.name", "must be a non-empty string")
            if not all(isinstance(v, int) and 0 <= v < 100 for v in shares):
                self.problem(path, "quorum_percent and majority_percent must be 0..99")
                continue
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                self.problem(f"{path}.members", "must be a list of person ids")
                continue
            bodies[str(body)] = DecisionBody(str(name), shares[0], shares[1], frozenset(members))
        return bodies

    def retention(
        self, raw: Any, bodies: Mapping[str, DecisionBody], limits: Mapping[str, TimeLimit]
    ) -> tuple[str, int]:
        if not raw:
            return "", 0
        if not isinstance(raw, Mapping) or set(raw) != {"body", "max_extensions"}:
            self.problem("retention", "must name body and max_extensions")
            return "", 0
        body, count = raw["body"], raw["max_extensions"]
        if body not in bodies:
            self.problem("retention.body", f"{body!r} is not a decision body")
        if not isinstance(count, int) or count < 0:
            self.problem("retention.max_extensions", "must be a whole number ≥ 0")
            count = 0
        for name in ("retention", "retention_extension"):
            if name not in limits or not limits[name].months:
                self.problem("time_limits", f"retention needs {name!r} in months")
        return str(body), count

    def collective(
        self, raw: Any, bodies: Mapping[str, DecisionBody], tables: Mapping[str, Any]
    ) -> dict[str, str]:
        if not isinstance(raw, Mapping):
            self.problem("collective", "must map approvals tables to decision bodies")
            return {}
        for table, body in raw.items():
            if table not in tables:
                self.problem(f"collective.{table}", "is not an approvals table")
            if body not in bodies:
                self.problem(f"collective.{table}", f"{body!r} is not a decision body")
        return {str(table): str(body) for table, body in raw.items()}

    def team_sizes(self, raw: Any) -> dict[str, int]:
        if raw is None:
            # A county file written before team sizes were data keeps the national default.
            return dict(DEFAULT_TEAM_SIZES)
        if not isinstance(raw, Mapping):
            self.problem("team_sizes", "must map team stages to a number of people")
            return {}
        sizes: dict[str, int] = {}
        for stage, size in raw.items():
            path = f"team_sizes.{stage}"
            if stage not in TEAM_STAGES:
                self.problem(path, f"is not a team stage ({', '.join(TEAM_STAGES)})")
            elif isinstance(size, bool) or not isinstance(size, int):
                self.problem(path, "must be a whole number of people")
            elif not MIN_TEAM_SIZE <= size <= MAX_TEAM_SIZE:
                self.problem(
                    path,
                    f"must be {MIN_TEAM_SIZE}..{MAX_TEAM_SIZE} people (Supervision Law art. 41: "
                    "at least two)",
                )
            else:
                sizes[str(stage)] = size
        for stage in TEAM_STAGES:
            if stage not in raw:
                self.problem("team_sizes", f"lacks {stage!r}")
        return sizes
