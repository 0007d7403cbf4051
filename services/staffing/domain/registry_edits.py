"""Checking registry edits and saying what changed (the registry's history is kept by field)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from services.staffing.domain.registry import PersonStatus, Role

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_SKILL = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_WORKLOAD_CAP = 50


def id_problem(value: str) -> str | None:
    """Why `value` cannot be a registry id, if it cannot."""
    if not value:
        return "is required"
    if not _ID.match(value):
        return "must be 1-64 letters, digits, '_', '.', ':' or '-'"
    return None


def person_problems(
    *,
    name: str,
    roles: Sequence[str],
    skills: Sequence[str],
    workload_cap: int,
    village_id: str,
    statuses: Sequence[tuple[str, str, str]],
) -> list[tuple[str, str]]:
    """What is wrong with the fields, as (field, problem); statuses as (status, start, end)."""
    problems: list[tuple[str, str]] = []
    if not name.strip():
        problems.append(("name", "is required"))
    if not roles:
        problems.append(("roles", "at least one role is required"))
    known = {role.value for role in Role}
    for index, role in enumerate(roles):
        if role not in known:
            problems.append((f"roles[{index}]", f"unknown role {role!r}"))
    for index, skill in enumerate(skills):
        if not _SKILL.match(skill):
            problems.append((f"skills[{index}]", "must be a lower-case name like finance_audit"))
    if not 0 <= workload_cap <= MAX_WORKLOAD_CAP:
        problems.append(("workload_cap", f"must be 0..{MAX_WORKLOAD_CAP}"))
    if Role.VILLAGE_INFORMANT.value in roles and not village_id:
        problems.append(("village_id", "a village informant needs a village"))
    statuses_known = {status.value for status in PersonStatus}
    for index, (status, start, end) in enumerate(statuses):
        where = f"statuses[{index}]"
        if status not in statuses_known:
            problems.append((f"{where}.status", f"unknown status {status!r}"))
        first = _day(start)
        last = _day(end) if end else None
        if first is None:
            problems.append((f"{where}.start_date", "must be a date YYYY-MM-DD"))
        if end and last is None:
            problems.append((f"{where}.end_date", "must be a date YYYY-MM-DD"))
        if first and last and last < first:
            problems.append((f"{where}.end_date", "is before start_date"))
    return problems


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ (every field of a new record)."""
    if before is None:
        return sorted(after)
    return sorted(key for key in after if before.get(key) != after[key])


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
