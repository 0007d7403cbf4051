"""Pure helpers that arrange what the services answered into what a casework page shows.

Nothing here decides what a user may see or do: the lists come from the services, read with
the user's own token, and the actions offered are the ones cases names (GetCase.open_actions).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.cases.v1 import cases_pb2

from services.cases.domain.casefile import (
    APPEAL_OUTCOMES,
    DECISION_KINDS,
    DISPOSAL_WAYS,
    INQUIRY_OUTCOMES,
    PROCURATORATE_DECISIONS,
    STORED_REVIEWS,
    VERIFICATION_PROPOSALS,
)
from services.cases.domain.rules import DEFAULT_RULES

# Stages in the order of the national default rule set; a county's own stages follow them.
STAGE_ORDER: tuple[str, ...] = tuple(DEFAULT_RULES.stages)
# Stages in which a file's work is over: its team no longer counts against anyone.
CONCLUDED_STAGES = frozenset({"closed", "decided"})


def when(stamp: Timestamp | None) -> str:
    """A timestamp as UTC to the minute, or "" when unset."""
    if stamp is None or (not stamp.seconds and not stamp.nanos):
        return ""
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M")


def stage_rank(stage: str) -> tuple[int, str]:
    """Sort key putting stages in workflow order, unknown ones after, by name."""
    try:
        return (STAGE_ORDER.index(stage), stage)
    except ValueError:
        return (len(STAGE_ORDER), stage)


@dataclass(frozen=True)
class StageCount:
    """How many files stand in one stage."""

    stage: str
    count: int


def by_stage(stages: Iterable[str]) -> list[StageCount]:
    """Counts per stage, in workflow order."""
    counted = Counter(stages)
    return [StageCount(stage, counted[stage]) for stage in sorted(counted, key=stage_rank)]


def stage_counts(counts: Iterable[cases_pb2.StageCount], *, filed: bool) -> list[StageCount]:
    """cases' counts of filed cases (or of clues not filed), in workflow order."""
    return [
        StageCount(c.stage, c.count)
        for c in sorted(counts, key=lambda c: stage_rank(c.stage))
        if c.filed == filed and c.count
    ]


def awaiting(cases: Iterable[cases_pb2.CaseSummary]) -> list[cases_pb2.CaseSummary]:
    """The files on which cases says an approval awaits the user (CaseSummary.caller_approvals).

    Disposals, verification outcomes, filings and decisions, but also plans, extensions,
    retention and appeals: whatever the rule set reserves to the user's role next.
    """
    return [case for case in cases if case.caller_approvals]


def draw_ids(history: Iterable[cases_pb2.CaseStep]) -> list[DrawStep]:
    """Every draw a file's history names (team assigned or refused, unfillable), oldest first."""
    found: list[DrawStep] = []
    for step in history:
        detail = step_detail(step)
        draw_id = detail.get("draw_id")
        if isinstance(draw_id, str) and draw_id:
            members = detail.get("members") or []
            found.append(
                DrawStep(
                    draw_id=draw_id,
                    action=step.action,
                    team=str(detail.get("team") or ""),
                    members=tuple(str(m) for m in members if isinstance(m, str)),
                    at=when(step.at),
                )
            )
    return found


@dataclass(frozen=True)
class DrawStep:
    """A draw as the case file's history names it."""

    draw_id: str
    action: str
    team: str
    members: tuple[str, ...]
    at: str


def step_detail(step: cases_pb2.CaseStep) -> dict[str, Any]:
    """A step's action-specific facts (empty when none or not an object)."""
    if not step.detail_json:
        return {}
    try:
        detail = json.loads(step.detail_json)
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def detail_text(step: cases_pb2.CaseStep) -> str:
    """A step's facts as short `key: value` text, for the history table."""
    parts = []
    for key, value in step_detail(step).items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


class PersonLike(Protocol):
    """What the workload view reads of a staffing Person."""

    person_id: str
    name: str
    workload_cap: int
    open_assignments: int


@dataclass(frozen=True)
class Workload:
    """One person's open assignments against their cap, as staffing counts them."""

    person_id: str
    name: str
    open_assignments: int
    cap: int

    @property
    def at_cap(self) -> bool:
        """Whether they hold as many open assignments as the cap allows (or more)."""
        return self.cap > 0 and self.open_assignments >= self.cap

    @property
    def percent(self) -> int:
        """Share of the cap in use, 0..100, for a bar."""
        if self.cap <= 0:
            return 100 if self.open_assignments else 0
        return min(100, round(100 * self.open_assignments / self.cap))


def workloads(people: Iterable[PersonLike]) -> list[Workload]:
    """Everyone who can carry assignments, fullest first, then by id."""
    rows = [
        Workload(p.person_id, p.name, p.open_assignments, p.workload_cap)
        for p in people
        if p.workload_cap > 0 or p.open_assignments
    ]
    return sorted(rows, key=lambda w: (-w.percent, -w.open_assignments, w.person_id))


@dataclass(frozen=True)
class Field:
    """One input of an action form: an ActOnCaseRequest field."""

    name: str
    kind: str  # select, text, textarea, number, sanctions, measures, meeting
    options: tuple[str, ...] = ()
    required: bool = False


_REASON = Field("reason", "textarea")
_REASON_REQUIRED = Field("reason", "textarea", required=True)
_MEETING = Field("meeting", "meeting")
_SANCTIONS = Field("sanctions", "sanctions")
_MEASURES = Field("organisational_measures", "measures")


def _choice(options: Iterable[str]) -> Field:
    return Field("choice", "select", tuple(options), required=True)


# The inputs each action's form shows (presentation only: cases checks every field again and
# answers INVALID_ARGUMENT naming the field, shown beside it). An action a county adds that is
# not listed gets a choice and a reason.
ACTION_FIELDS: Mapping[str, tuple[Field, ...]] = {
    "propose_disposal": (_choice(DISPOSAL_WAYS), _REASON),
    "approve_disposal": (),
    "reject_proposal": (_REASON_REQUIRED,),
    "record_inquiry_outcome": (_choice(INQUIRY_OUTCOMES), _REASON),
    "review_stored": (_choice(STORED_REVIEWS), _REASON),
    "send_inquiry_letter": (),
    "record_inquiry_reply": (_REASON,),
    "approve_plan": (_MEETING,),
    "sign_report": (),
    "propose_outcome": (_choice(VERIFICATION_PROPOSALS), _REASON),
    "approve_outcome": (),
    "approve_filing": (),
    "record_evidence": (
        Field("description", "text", required=True),
        Field("sha256", "text", required=True),
    ),
    "record_subject_heard": (_REASON,),
    "request_extension": (Field("days", "number", required=True), _REASON_REQUIRED),
    "approve_extension": (),
    "submit_investigation_report": (_REASON,),
    "accept_file": (),
    "defer_file": (_REASON_REQUIRED,),
    "refuse_file": (_REASON_REQUIRED,),
    "send_back": (_REASON_REQUIRED,),
    "submit_hearing_report": (_choice(DECISION_KINDS), _SANCTIONS, _MEASURES, _REASON),
    "approve_decision": (_MEETING,),
    "request_supplementary": (_REASON,),
    "record_procuratorate_decision": (_choice(PROCURATORATE_DECISIONS), _REASON),
    "notify_unit": (Field("description", "text", required=True),),
    "request_retention": (_MEETING, _REASON),
    "approve_retention": (),
    "end_retention": (_REASON,),
    "complete_supplementary": (),
    "file_appeal": (_REASON,),
    "decide_appeal": (
        _choice(APPEAL_OUTCOMES),
        Field("decision", "select", tuple(sorted(DECISION_KINDS))),
        _SANCTIONS,
        _MEASURES,
        _MEETING,
        _REASON,
    ),
}
_UNLISTED = (Field("choice", "text"), _REASON)


@dataclass(frozen=True)
class ActionForm:
    """One action the user may take, with its inputs."""

    action: str
    fields: tuple[Field, ...]


def action_forms(open_actions: Sequence[str]) -> list[ActionForm]:
    """A form for each action cases says the user may take now, in its order."""
    return [ActionForm(action, ACTION_FIELDS.get(action, _UNLISTED)) for action in open_actions]


# A submitted form (Starlette's FormData is one): input name → value.
FormData = Mapping[str, Any]


class FormProblem(Exception):
    """A form value the request cannot even be built from; `field` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _lines(value: str) -> list[str]:
    return [part.strip() for part in value.replace(",", "\n").splitlines() if part.strip()]


def _number(form: FormData, name: str) -> int:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError as exc:
        raise FormProblem(name, "not_a_number") from exc


def act_request(
    case_id: str, action: str, form: FormData, idempotency_key: str
) -> cases_pb2.ActOnCaseRequest:
    """The ActOnCase request a submitted action form stands for.

    Only the form's shape is read here (a number must be a number, a sanction TRACK:KIND);
    whether the values are acceptable is for cases to say.
    """
    request = cases_pb2.ActOnCaseRequest(
        idempotency_key=idempotency_key,
        case_id=case_id,
        action=action,
        choice=str(form.get("choice") or "").strip(),
        reason=str(form.get("reason") or "").strip(),
        days=_number(form, "days"),
        description=str(form.get("description") or "").strip(),
        sha256=str(form.get("sha256") or "").strip().lower(),
        decision=str(form.get("decision") or "").strip(),
        organisational_measures=_lines(str(form.get("organisational_measures") or "")),
    )
    for index, line in enumerate(_lines(str(form.get("sanctions") or ""))):
        track, _, kind = line.partition(":")
        if not track.strip() or not kind.strip():
            raise FormProblem("sanctions", f"sanction_shape:{index}")
        request.sanctions.append(cases_pb2.Sanction(track=track.strip(), kind=kind.strip()))
    body = str(form.get("meeting_body") or "").strip()
    if body:
        members = _lines(str(form.get("meeting_members") or ""))
        present = _lines(str(form.get("meeting_present") or "")) or members
        request.meeting.CopyFrom(
            cases_pb2.CaseMeeting(
                body=body,
                minutes_ref=str(form.get("meeting_minutes_ref") or "").strip(),
                members=members,
                present=present,
                votes_for=_number(form, "meeting_votes_for"),
                votes_against=_number(form, "meeting_votes_against"),
            )
        )
    return request


def form_field(violation_field: str) -> str:
    """The form input a service's field violation belongs to (`sanctions[1]` → `sanctions`)."""
    head = violation_field.split("[", 1)[0].split(".", 1)[0]
    return head or "action"


def errors_by_field(violations: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Field violations grouped by the form input they are shown beside."""
    grouped: dict[str, list[str]] = {}
    for name, description in violations:
        grouped.setdefault(form_field(name), []).append(description)
    return grouped


@dataclass
class NameBook:
    """Names of zones, townships and people by id, as far as the user may read them."""

    names: dict[str, str] = field(default_factory=dict)

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Learn names (empty ones are ignored)."""
        self.names.update((key, name) for key, name in pairs if key and name)

    def name(self, key: str) -> str:
        """The name of an id, or "" when the user may not read it or it has none."""
        return self.names.get(key, "")

    def label(self, key: str) -> str:
        """`name (id)`, or just the id when no name is known."""
        name = self.names.get(key, "")
        return f"{name} ({key})" if name else key
