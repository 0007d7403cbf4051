"""Intake's procedural rules as versioned data: deadlines, receipt guard, duplicates, triage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.intake.domain.kinds import CadreLevel

_LEVELS = frozenset(level.value for level in CadreLevel)


class RulesInvalid(ValueError):
    """The rules data is malformed; the service must not start with it."""


@dataclass(frozen=True)
class ReceiptGuard:
    """How many failed receipt look-ups are tolerated, per source and per county."""

    max_failures_per_caller: int
    window_minutes: int
    lockout_minutes: int
    # From every source of the county together: bounds guessing from ever-new sources.
    max_failures_per_county: int = 50


@dataclass(frozen=True)
class TriageWeights:
    """Points each signal adds to a clue's priority (capped at `max`)."""

    base: int
    real_name: int
    specific_subject: int
    evidence_attached: int
    per_repeat: int
    campaign_domain: int
    max: int


@dataclass(frozen=True)
class IntakeRules:
    """One version of intake's rules."""

    version: str
    effective_from: date
    acceptance_feedback_working_days: int
    # Working days after closure within which a real-name reporter is told the result.
    result_feedback_working_days: int
    forward_working_days: int
    receipt_guard: ReceiptGuard
    duplicate_window_days: int
    triage: TriageWeights
    # A name this many edits away, in the same township, is flagged as a near-duplicate.
    near_name_max_edits: int = 1
    # 分级负责: cadre levels this county does not manage, and the body each is forwarded to.
    forward_upward: Mapping[str, str] = field(default_factory=dict)


def _positive(raw: Mapping[str, Any], name: str, where: str) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RulesInvalid(f"{where}.{name} must be a positive integer")
    return value


def _section(raw: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = raw.get(name)
    if not isinstance(value, Mapping):
        raise RulesInvalid(f"{where}.{name} must be a mapping")
    return value


def _receipt_guard(raw: Mapping[str, Any], where: str) -> ReceiptGuard:
    # A county's older file without the county budget gets the default one.
    optional = {"max_failures_per_county"}
    return ReceiptGuard(
        **{
            name: _positive(raw, name, where)
            for name in ReceiptGuard.__dataclass_fields__
            if name not in optional or name in raw
        }
    )


def _edits(raw: Mapping[str, Any], where: str) -> int:
    value = raw.get("near_name_max_edits", 1)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 5:
        raise RulesInvalid(f"{where}.near_name_max_edits must be an integer 0..5")
    return value


def _forward_upward(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise RulesInvalid(f"{where}.jurisdiction must be a mapping")
    upward = raw.get("forward_upward") or {}
    if not isinstance(upward, Mapping) or not all(
        level in _LEVELS and isinstance(body, str) and body.strip()
        for level, body in upward.items()
    ):
        raise RulesInvalid(f"{where}.jurisdiction.forward_upward must map levels to bodies")
    return dict(upward)


def parse_rules(data: Any) -> list[IntakeRules]:
    """Validate the rules file's content."""
    if not isinstance(data, Mapping) or not isinstance(data.get("versions"), list):
        raise RulesInvalid("expected a mapping with a 'versions' list")
    versions: list[IntakeRules] = []
    for index, raw in enumerate(data["versions"]):
        where = f"versions[{index}]"
        if not isinstance(raw, Mapping):
            raise RulesInvalid(f"{where} must be a mapping")
        version, effective = raw.get("version"), raw.get("effective_from")
        if not isinstance(version, str) or not version:
            raise RulesInvalid(f"{where}.version must be a non-empty string")
        if not isinstance(effective, date):
            raise RulesInvalid(f"{where}.effective_from must be a date")
        if raw.get("holidays"):
            # One calendar per county for every service: a second list here could disagree.
            raise RulesInvalid(
                f"{where}.holidays: holidays live in the county's working calendar file "
                "(XIEZUO_WORKING_CALENDAR_FILE), not in intake's rules: remove them here"
            )
        guard = _section(raw, "receipt_guard", where)
        duplicates = _section(raw, "duplicates", where)
        triage = _section(raw, "triage", where)
        versions.append(
            IntakeRules(
                version=version,
                effective_from=effective,
                acceptance_feedback_working_days=_positive(
                    raw, "acceptance_feedback_working_days", where
                ),
                result_feedback_working_days=_positive(raw, "result_feedback_working_days", where),
                forward_working_days=_positive(raw, "forward_working_days", where),
                receipt_guard=_receipt_guard(guard, f"{where}.receipt_guard"),
                duplicate_window_days=_positive(duplicates, "window_days", f"{where}.duplicates"),
                triage=TriageWeights(
                    **{
                        name: _positive(triage, name, f"{where}.triage")
                        for name in TriageWeights.__dataclass_fields__
                    }
                ),
                near_name_max_edits=_edits(duplicates, f"{where}.duplicates"),
                forward_upward=_forward_upward(raw.get("jurisdiction") or {}, where),
            )
        )
    if not versions:
        raise RulesInvalid("no versions")
    return versions


def rules_in_force(versions: Sequence[IntakeRules], on: date) -> IntakeRules:
    """The newest version effective on `on`."""
    candidates = [rules for rules in versions if rules.effective_from <= on]
    if not candidates:
        raise LookupError(f"no intake rules are in force on {on.isoformat()}")
    return max(candidates, key=lambda rules: rules.effective_from)
