"""A staff member's work on cases: team stages finished (led, on time or late) and quality.

Derived when read from per-case facts (teams requested and drawn, steps that end a team's
stage, breaches), so the counts do not depend on the order the topics were consumed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.assessment.domain.kpis import Kpi, detailed_kpi

# A team's stage (TeamRequested.stage) → the workflow stages it works in; a step from one of
# them to a stage outside ends the team's work (a rejected proposal stays inside).
TEAM_STAGES: Mapping[str, frozenset[str]] = {
    "verification": frozenset({"verification", "verification_proposed"}),
    "investigation": frozenset({"investigation"}),
    "hearing": frozenset({"hearing_pending", "hearing", "decision_proposed"}),
    "review": frozenset({"appeal_first_review", "appeal_second_review"}),
}
# Deadline kinds cases publishes → the team stage whose limit they are.
STAGE_CLOCKS: Mapping[str, str] = {
    "verification": "verification",
    "investigation": "investigation",
    "reinvestigation": "investigation",
    "hearing": "hearing",
    "appeal_first_review": "review",
    "appeal_second_review": "review",
}
SENT_BACK = "sent_back"
APPEAL_CHANGED = "appeal_changed"
# Quality steps → the teams that answer for them and the KPI they count against each member.
QUALITY: Mapping[str, tuple[tuple[str, ...], str]] = {
    SENT_BACK: (("investigation",), Kpi.CASES_SENT_BACK.value),
    APPEAL_CHANGED: (("investigation", "hearing"), Kpi.APPEALS_CHANGED.value),
}


def stage_ended(from_stage: str, to_stage: str) -> str | None:
    """The team stage a workflow step ends, if any."""
    for team_stage, stages in TEAM_STAGES.items():
        if from_stage in stages and to_stage not in stages:
            return team_stage
    return None


@dataclass(frozen=True)
class Team:
    """A team drawn for a request: its members (person, leader) and when it was asked for."""

    case_id: str
    stage: str
    request_id: str
    zone_id: str
    members: tuple[tuple[str, bool], ...]
    requested_at: datetime
    # Orders several draws for one request (a redraw replaces the team).
    drawn: tuple[datetime, str]


@dataclass(frozen=True)
class WorkStep:
    """A step that ends a team's stage (kind = the stage) or judges its work (a quality kind)."""

    case_id: str
    kind: str
    event_id: str
    occurred_at: datetime
    quarter: str


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _team_at(teams: Sequence[Team], stage: str, moment: datetime) -> Team | None:
    """The team working `stage` at `moment`: the latest request by then, its latest draw."""
    candidates = [
        team for team in teams if team.stage == stage and _utc(team.requested_at) <= moment
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda team: (_utc(team.requested_at), team.drawn))


def work_counts(
    teams: Sequence[Team],
    steps: Sequence[WorkStep],
    breaches: Mapping[tuple[str, str], Sequence[datetime]],
    quarter: str,
) -> dict[tuple[str, str, str], list[str]]:
    """(person, zone, kpi) → the step events counted for the people on the teams.

    `teams`, `steps` and `breaches` ((case, stage) → due dates) cover the cases with a step in
    `quarter`; only steps of `quarter` are counted.
    """
    by_case: dict[str, list[Team]] = defaultdict(list)
    for team in teams:
        by_case[team.case_id].append(team)
    counted: dict[tuple[str, str, str], list[str]] = defaultdict(list)

    def count(person: str, zone: str, kpi: str, event_id: str) -> None:
        events = counted[(person, zone, kpi)]
        if event_id not in events:
            events.append(event_id)

    for step in sorted(steps, key=lambda item: (_utc(item.occurred_at), item.event_id)):
        if step.quarter != quarter:
            continue
        moment = _utc(step.occurred_at)
        if step.kind in TEAM_STAGES:
            working = _team_at(by_case[step.case_id], step.kind, moment)
            if working is None:
                continue
            started = _utc(working.requested_at)
            late = any(
                started < _utc(due) <= moment for due in breaches.get((step.case_id, step.kind), ())
            )
            for person, leader in working.members:
                kpis = [
                    Kpi.STAGES_COMPLETED.value,
                    detailed_kpi(Kpi.STAGES_COMPLETED, step.kind),
                    (Kpi.STAGES_LATE if late else Kpi.STAGES_COMPLETED_IN_TIME).value,
                ]
                if leader:
                    kpis.append(Kpi.STAGES_LED.value)
                for kpi in kpis:
                    count(person, working.zone_id, kpi, step.event_id)
        elif step.kind in QUALITY:
            stages, kpi = QUALITY[step.kind]
            for stage in stages:
                answering = _team_at(by_case[step.case_id], stage, moment)
                if answering is None:
                    continue
                for person, _leader in answering.members:
                    count(person, answering.zone_id, kpi, step.event_id)
    return dict(counted)
