"""The shape of one rule-set version: stages, transitions, approvals, time limits."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from services.working_calendar import NATIONAL_CALENDAR, WorkingCalendar


@dataclass(frozen=True)
class TimeLimit:
    """How long a stage may take: calendar months, calendar days or working days."""

    months: int = 0
    days: int = 0
    working_days: int = 0
    # DeadlineApproaching fires this many calendar days before the due moment.
    warn_days: int = 0


@dataclass(frozen=True)
class ExtensionRule:
    """How a running time limit may be extended, and who approves it."""

    max_count: int
    max_days: int
    # "one_level_up": the role above the last approver of `relative_to`; or a role name.
    approver: str
    relative_to: str


@dataclass(frozen=True)
class DecisionSanctions:
    """Which sanction tracks a decision kind must name (`requires`) and may carry (`allows`)."""

    requires: frozenset[str] = frozenset()
    allows: frozenset[str] = frozenset()


# What a rule set that does not say decides: a transfer may carry 双开 (DOMAIN.md §5).
DEFAULT_DECISION_SANCTIONS: Mapping[str, DecisionSanctions] = {
    "party_sanction": DecisionSanctions(frozenset({"party"}), frozenset({"party", "government"})),
    "government_sanction": DecisionSanctions(
        frozenset({"government"}), frozenset({"party", "government"})
    ),
    "transfer": DecisionSanctions(frozenset(), frozenset({"party", "government"})),
}


# Staff drawn per team when a rule set names none (Supervision Law (2018) art. 41: investigative
# measures are taken by at least two people).
DEFAULT_TEAM_SIZES: Mapping[str, int] = {
    "verification": 2,
    "investigation": 2,
    "hearing": 2,
    "review": 2,
}


@dataclass(frozen=True)
class DecisionBody:
    """A body that decides in session (纪委常委会, 监委委务会, a special meeting)."""

    name: str
    # A meeting decides only with more than this share of the members present …
    quorum_percent: int = 50
    # … and a motion carries with more than this share of those present voting for it.
    majority_percent: int = 50
    # The body's members when the county names them; empty: each meeting's record names them.
    members: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TransitionRule:
    """Who may take an action, from which stages, into which stages."""

    action: str
    from_stages: frozenset[str]
    to_stages: frozenset[str]
    roles: frozenset[str] = frozenset()
    # Names an approvals table (or a derived one): the approver role comes from the rules.
    approval: str = ""
    # The actor must be on the team that currently works the file.
    team: bool = False


@dataclass(frozen=True)
class RuleSet:
    """One version of a county's procedural rules."""

    version: str
    effective_from: date
    # 线索处置: a clue must be disposed of within this many calendar months.
    clue_disposal_months: int
    description: str = ""
    # The county's working calendar (one file for all its services), not part of the rule file.
    calendar: WorkingCalendar = NATIONAL_CALENDAR
    approval_ladder: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    time_limits: Mapping[str, TimeLimit] = field(default_factory=dict)
    extensions: Mapping[str, ExtensionRule] = field(default_factory=dict)
    max_supplementary_rounds: int = 0
    # track ("party"/"government") → sanction → months in effect (0: no period).
    sanction_effect_months: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # decision kind → the sanction tracks it needs and may carry (absent: no sanctions).
    decision_sanctions: Mapping[str, DecisionSanctions] = field(
        default_factory=lambda: dict(DEFAULT_DECISION_SANCTIONS)
    )
    # approvals table → subject cadre level → roles approving in order.
    approvals: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    # 留置: the body that decides it in session, and how often it may be extended.
    retention_body: str = ""
    max_retention_extensions: int = 0
    # 组织处理 measures a decision may name beside (or instead of) sanctions.
    organisational_measures: frozenset[str] = frozenset()
    # Decision bodies by id, and which approvals tables they decide collectively (table → body).
    decision_bodies: Mapping[str, DecisionBody] = field(default_factory=dict)
    collective: Mapping[str, str] = field(default_factory=dict)
    transitions: Mapping[str, TransitionRule] = field(default_factory=dict)
    # Team stage (verification, investigation, hearing, review) → people staffing draws.
    team_sizes: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TEAM_SIZES))

    def team_size(self, stage: str) -> int:
        """How many people a team drawn for `stage` has."""
        return self.team_sizes[stage]

    def limit(self, name: str) -> TimeLimit:
        """The named time limit; the disposal limit falls back to `clue_disposal_months`."""
        if name in self.time_limits:
            return self.time_limits[name]
        if name == "disposal":
            return TimeLimit(months=self.clue_disposal_months)
        raise LookupError(f"rule set {self.version} has no time limit {name!r}")

    def due(self, name: str, start: datetime) -> datetime:
        """When the named time limit, started at `start`, runs out (in UTC).

        Every unit is counted on the county's dates (its calendar's time zone), not UTC's:
        31 March 01:00 Beijing time plus a month is 30 April, though it is 30 March in UTC.
        """
        limit = self.limit(name)
        if limit.working_days:
            return self.calendar.working_days_after(start, limit.working_days)
        if limit.months:
            return self.months_after(start, limit.months)
        return (self.calendar.local(start) + timedelta(days=limit.days)).astimezone(UTC)

    def months_after(self, start: datetime, months: int) -> datetime:
        """`months` after `start` on the county's dates (clamped to the month's end), in UTC."""
        return add_months(self.calendar.local(start), months).astimezone(UTC)

    def warn_at(self, name: str, due: datetime) -> datetime:
        """When DeadlineApproaching fires for a deadline of this kind (calendar days before)."""
        local = self.calendar.local(due)
        return (local - timedelta(days=self.limit(name).warn_days)).astimezone(UTC)

    def approvers(self, table: str, cadre_level: str) -> tuple[str, ...]:
        """Roles that approve, in order, for a subject of this cadre level."""
        levels = self.approvals.get(table, {})
        return levels.get(cadre_level) or levels.get("unknown") or ()

    def one_level_up(self, role: str) -> str:
        """The role above `role` on the approval ladder (the top approves its own)."""
        index = self.approval_ladder.index(role)
        return self.approval_ladder[min(index + 1, len(self.approval_ladder) - 1)]

    def extension_approver(self, stage: str, cadre_level: str) -> str:
        """Who approves an extension of the time limit running in `stage`."""
        rule = self.extensions[stage]
        if rule.approver != "one_level_up":
            return rule.approver
        chain = self.approvers(rule.relative_to, cadre_level)
        return self.one_level_up(chain[-1])

    def sanction_months(self, track: str, sanction: str) -> int:
        """Months a sanction stays in effect."""
        return self.sanction_effect_months[track][sanction]


def add_months(moment: datetime, months: int) -> datetime:
    """Same day `months` later, clamped to the month's last day (Jan 31 + 1 → Feb 28/29)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
