"""Pure helpers that arrange assessment, staffing and collaboration answers for county pages.

Nothing here decides a score, a rank, a tier or who may see what: the numbers come from the
services, read with the user's own token; these helpers only put names beside ids and lay the
numbers out side by side.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.assessment.v1 import assessment_pb2
from xiezuo.collaboration.v1 import collaboration_pb2
from xiezuo.staffing.v1 import training_pb2

from services.console.grpc_calls import Refused
from services.runtime.deadletters import DeadLetter

# Levels as they appear in URLs, and the assessment level each names.
LEVELS: dict[str, int] = {
    "zone": assessment_pb2.LEVEL_ZONE,
    "township": assessment_pb2.LEVEL_TOWNSHIP,
    "person": assessment_pb2.LEVEL_PERSON,
}
TIERS = {
    assessment_pb2.TIER_TOP: "top",
    assessment_pb2.TIER_MIDDLE: "middle",
    assessment_pb2.TIER_BOTTOM: "bottom",
}
COMPONENT_KINDS = {
    assessment_pb2.COMPONENT_KIND_BASE: "base",
    assessment_pb2.COMPONENT_KIND_BONUS: "bonus",
    assessment_pb2.COMPONENT_KIND_RATIO: "ratio",
    assessment_pb2.COMPONENT_KIND_DEDUCTION: "deduction",
    assessment_pb2.COMPONENT_KIND_QUALITATIVE: "qualitative",
}
QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
YEAR = re.compile(r"^\d{4}$")


def when(stamp: Timestamp | None) -> str:
    """A timestamp as UTC to the minute, or "" when unset."""
    if stamp is None or (not stamp.seconds and not stamp.nanos):
        return ""
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M")


def quarter_of(day: date) -> str:
    """The calendar quarter a day falls in, e.g. "2026Q3"."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def period_or(period: str, today: date) -> str:
    """The period asked for when it looks like one ("2026Q3" or "2026"), else this quarter.

    Only the shape is checked, to build links; assessment judges the period itself.
    """
    if QUARTER.match(period) or YEAR.match(period):
        return period
    return quarter_of(today)


def year_of(period: str) -> int:
    """The year of a quarter or year period."""
    return int(period[:4])


def neighbours(period: str) -> tuple[str, str]:
    """The periods before and after (quarters step by quarter, years by year)."""
    found = QUARTER.match(period)
    if found is None:
        year = int(period)
        return str(year - 1), str(year + 1)
    year, quarter = int(found[1]), int(found[2])
    before = f"{year - 1}Q4" if quarter == 1 else f"{year}Q{quarter - 1}"
    after = f"{year + 1}Q1" if quarter == 4 else f"{year}Q{quarter + 1}"
    return before, after


def kpi_parts(kpi: str) -> tuple[str, str]:
    """A KPI's base name (for its label) and its detail, e.g. ("deadlines_breached", "hearing")."""
    base, _, detail = kpi.partition(".")
    return base, detail


@dataclass(frozen=True)
class FourFormsRow:
    """People dealt with in each of the four forms (四种形态)."""

    people: int
    forms: tuple[int, int, int, int]

    @classmethod
    def of(cls, message: assessment_pb2.FourForms) -> FourFormsRow:
        """From assessment's message."""
        return cls(message.people, (message.form_1, message.form_2, message.form_3, message.form_4))


@dataclass(frozen=True)
class RankedRow:
    """One unit's place in a ranking, with its name beside its id."""

    subject_id: str
    name: str
    zone_ids: tuple[str, ...]
    zone_names: tuple[str, ...]
    total: float
    rank: int
    tier: str
    four_forms: FourFormsRow


def display_name(subject_id: str, *names: Mapping[str, str] | str) -> str:
    """The first non-empty name known for an id (a given name, then lookups), else the id."""
    for source in names:
        found = source if isinstance(source, str) else source.get(subject_id, "")
        if found:
            return found
    return subject_id


def ranked_rows(
    entries: Iterable[assessment_pb2.RankingEntry], names: Mapping[str, str]
) -> list[RankedRow]:
    """Ranking entries as rows, each id beside the name assessment or the registry gives it."""
    return [
        RankedRow(
            subject_id=entry.subject_id,
            name=display_name(entry.subject_id, entry.name, names),
            zone_ids=tuple(entry.zone_ids),
            zone_names=tuple(display_name(zone, names) for zone in entry.zone_ids),
            total=entry.total,
            rank=entry.rank,
            tier=TIERS.get(entry.tier, ""),
            four_forms=FourFormsRow.of(entry.four_forms),
        )
        for entry in entries
    ]


@dataclass(frozen=True)
class ComponentRow:
    """One line of an explained score, with the cases behind it."""

    kind: str
    kpi: str
    count: int
    of_kpi: str
    of_count: int
    points: float
    event_count: int
    case_ids: tuple[str, ...]


def component_rows(card: assessment_pb2.Scorecard) -> list[ComponentRow]:
    """The components of a scorecard in assessment's order."""
    return [
        ComponentRow(
            kind=COMPONENT_KINDS.get(part.kind, ""),
            kpi=part.kpi,
            count=part.count,
            of_kpi=part.of_kpi,
            of_count=part.of_count,
            points=part.points,
            event_count=len(part.event_ids),
            case_ids=tuple(part.case_ids),
        )
        for part in card.components
    ]


def cases_behind(rows: Iterable[ComponentRow]) -> list[str]:
    """Every case named by any component, each once, in the order first named."""
    return list(dict.fromkeys(case for row in rows for case in row.case_ids))


@dataclass(frozen=True)
class QuarterProgress:
    """One target's plan and actual in one quarter."""

    target: int
    actual: int
    percent: float
    met: bool


@dataclass
class PlanLine:
    """One zone's KPI across the quarters of the year."""

    zone_id: str
    zone_name: str
    kpi: str
    quarters: dict[int, QuarterProgress] = field(default_factory=dict)


def plan_lines(
    progress_by_quarter: Mapping[int, Sequence[assessment_pb2.TargetProgress]],
    names: Mapping[str, str],
) -> list[PlanLine]:
    """Targets of the year laid out as one line per zone and KPI, a cell per quarter."""
    lines: dict[tuple[str, str], PlanLine] = {}
    for quarter, progress in progress_by_quarter.items():
        for item in progress:
            key = (item.target.zone_id, item.target.kpi)
            line = lines.get(key)
            if line is None:
                zone = item.target.zone_id
                line = lines[key] = PlanLine(zone, display_name(zone, names), item.target.kpi)
            line.quarters[quarter] = QuarterProgress(
                item.target.target, item.actual, item.percent, item.met
            )
    return [lines[key] for key in sorted(lines)]


@dataclass(frozen=True)
class Tallies:
    """A campaign's counts under their keys, with names beside zone ids."""

    title: str
    rows: tuple[tuple[str, str, int], ...]


def tallies(
    title: str, items: Iterable[assessment_pb2.Tally], names: Mapping[str, str] | None = None
) -> Tallies:
    """(key, name, count) rows in assessment's order; name is the key when none is known."""
    known = names or {}
    return Tallies(
        title, tuple((item.key, display_name(item.key, known), item.count) for item in items)
    )


def board_csv(rows: Sequence[RankedRow], period: str) -> str:
    """The zones side by side as CSV (names beside ids), for the city commission."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["period", "rank", "zone_id", "zone", "total", "tier", "people", "f1", "f2", "f3", "f4"]
    )
    for row in rows:
        writer.writerow(
            [
                period,
                row.rank,
                row.subject_id,
                row.name,
                f"{row.total:.2f}",
                row.tier,
                row.four_forms.people,
                *row.four_forms.forms,
            ]
        )
    return out.getvalue()


def plan_csv(lines: Sequence[PlanLine], year: int, themes: Mapping[int, str]) -> str:
    """The plan against actual as CSV: one line per zone, KPI and quarter with a target."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        ["year", "quarter", "theme", "zone_id", "zone", "kpi", "target", "actual", "percent", "met"]
    )
    for line in lines:
        for quarter, cell in sorted(line.quarters.items()):
            writer.writerow(
                [
                    year,
                    quarter,
                    themes.get(quarter, ""),
                    line.zone_id,
                    line.zone_name,
                    line.kpi,
                    cell.target,
                    cell.actual,
                    f"{cell.percent:.1f}",
                    "yes" if cell.met else "no",
                ]
            )
    return out.getvalue()


SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def download_name(*parts: str, suffix: str) -> str:
    """A file name for a download made only of safe characters (ids can hold anything)."""
    stem = "-".join(SAFE_NAME.sub("_", part) for part in parts if part)
    return f"{stem}.{suffix}"


TRAINING_TYPES = {
    training_pb2.TRAINING_TYPE_LECTURE: "lecture",
    training_pb2.TRAINING_TYPE_CASE_STUDY: "case_study",
    training_pb2.TRAINING_TYPE_DRILL: "drill",
    training_pb2.TRAINING_TYPE_STUDY_VISIT: "study_visit",
}
ATTENDANCE_STATUSES = {
    training_pb2.ATTENDANCE_STATUS_PRESENT: "present",
    training_pb2.ATTENDANCE_STATUS_ABSENT: "absent",
    training_pb2.ATTENDANCE_STATUS_ON_LEAVE: "on_leave",
    training_pb2.ATTENDANCE_STATUS_ON_ASSIGNMENT: "on_assignment",
    training_pb2.ATTENDANCE_STATUS_IN_TRAINING: "in_training",
}


@dataclass(frozen=True)
class TrainingRow:
    """One training a person took."""

    date: str
    course: str
    type: str
    hours: float
    recorded_by: str


def training_rows(records: Iterable[training_pb2.TrainingRecord]) -> list[TrainingRow]:
    """Training records, newest first."""
    rows = [
        TrainingRow(
            r.date, r.course, TRAINING_TYPES.get(r.training_type, "other"), r.hours, r.recorded_by
        )
        for r in records
    ]
    return sorted(rows, key=lambda row: row.date, reverse=True)


@dataclass(frozen=True)
class AttendanceRow:
    """One day of a person's attendance."""

    day: str
    status: str
    note: str


def attendance_rows(days: Iterable[training_pb2.AttendanceDay]) -> list[AttendanceRow]:
    """Attendance days in date order."""
    rows = [AttendanceRow(d.day, ATTENDANCE_STATUSES.get(d.status, "other"), d.note) for d in days]
    return sorted(rows, key=lambda row: row.day)


def status_counts(rows: Iterable[AttendanceRow]) -> list[tuple[str, int]]:
    """How many days of each status, in the order statuses are defined."""
    counted: dict[str, int] = {}
    for row in rows:
        counted[row.status] = counted.get(row.status, 0) + 1
    order = [*ATTENDANCE_STATUSES.values(), "other"]
    return [(status, counted[status]) for status in order if status in counted]


def quarter_days(period: str) -> tuple[str, str]:
    """The first and last day of a quarter ("2026Q3" → 2026-07-01, 2026-09-30)."""
    found = QUARTER.match(period)
    if found is None:
        raise ValueError(f"not a quarter: {period!r}")
    year, quarter = int(found[1]), int(found[2])
    first_month = 3 * (quarter - 1) + 1
    last = date(year + 1, 1, 1) if quarter == 4 else date(year, first_month + 3, 1)
    return date(year, first_month, 1).isoformat(), date.fromordinal(
        last.toordinal() - 1
    ).isoformat()


LETTER_KINDS = {
    collaboration_pb2.LETTER_KIND_VERIFY_FACT: "verify_fact",
    collaboration_pb2.LETTER_KIND_WITNESS_STATEMENT: "witness_statement",
    collaboration_pb2.LETTER_KIND_REGISTRY_CHECK: "registry_check",
    collaboration_pb2.LETTER_KIND_LOCATE_PERSON: "locate_person",
    collaboration_pb2.LETTER_KIND_OTHER: "other",
}
LETTER_STATES = {
    collaboration_pb2.LETTER_STATE_AWAITING_APPROVAL: "awaiting_approval",
    collaboration_pb2.LETTER_STATE_SENT: "sent",
    collaboration_pb2.LETTER_STATE_RECEIVED: "received",
    collaboration_pb2.LETTER_STATE_ACCEPTED: "accepted",
    collaboration_pb2.LETTER_STATE_DECLINED: "declined",
    collaboration_pb2.LETTER_STATE_ANSWERED: "answered",
}
DIRECTIONS = {
    "outbound": collaboration_pb2.LETTER_DIRECTION_OUTBOUND,
    "inbound": collaboration_pb2.LETTER_DIRECTION_INBOUND,
}


@dataclass(frozen=True)
class LetterRow:
    """One letter in a list, the other county named."""

    letter_id: str
    counterpart_id: str
    counterpart: str
    case_id: str
    kind: str
    state: str
    due_date: str
    requested_at: str


def letter_rows(
    letters: Iterable[collaboration_pb2.Letter], counties: Mapping[str, str]
) -> list[LetterRow]:
    """Letters, newest first, with the other county's name beside its id."""
    rows = [
        LetterRow(
            letter_id=letter.letter_id,
            counterpart_id=letter.counterpart_county_id,
            counterpart=display_name(letter.counterpart_county_id, counties),
            case_id=letter.case_id,
            kind=LETTER_KINDS.get(letter.kind, "other"),
            state=LETTER_STATES.get(letter.state, ""),
            due_date=letter.due_date,
            requested_at=when(letter.requested_at),
        )
        for letter in letters
    ]
    return sorted(rows, key=lambda row: (row.requested_at, row.letter_id), reverse=True)


# Headers of a parked record an operator reads: the CloudEvents context, never the payload
# (a case's facts stay with the service that owns them).
SHOWN_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_time", "ce_subject", "content-type")


@dataclass(frozen=True)
class DeadLetterRow:
    """One parked record as the operator pages show it."""

    event_id: str
    event_type: str
    reason: str
    error: str
    attempts: str
    origin: str
    dead_lettered_at: str
    payload_bytes: int
    headers: tuple[tuple[str, str], ...]


def dead_letter_rows(letters: Iterable[DeadLetter]) -> list[DeadLetterRow]:
    """Parked records newest first, with the headers an operator may read."""
    rows = [
        DeadLetterRow(
            event_id=letter.event_id,
            event_type=letter.event_type,
            reason=letter.reason,
            error=letter.error,
            attempts=letter.attempts,
            origin=f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}",
            dead_lettered_at=letter.dead_lettered_at,
            payload_bytes=len(letter.value or b""),
            headers=tuple(
                (name, value.decode("utf-8", "replace"))
                for name, value in letter.headers
                if name in SHOWN_HEADERS
            ),
        )
        for letter in letters
    ]
    return sorted(rows, key=lambda row: row.dead_lettered_at, reverse=True)


# The fields of the qualitative-mark form, as posted.
MARK_FIELDS = ("quarter", "points", "reason", "idempotency_key")


def mark_request(
    county_id: str, level: int, subject_id: str, quarter: str, form: Mapping[str, str]
) -> assessment_pb2.RecordQualitativeScoreRequest:
    """The RecordQualitativeScore request a posted mark form makes.

    Points that are not a number are refused here in the service's own shape (a field
    violation on `points`); the range and the reason are assessment's to judge.
    """
    try:
        points = float(form.get("points", ""))
    except ValueError:
        raise Refused(400, "points", {"points": ["must be a number"]}) from None
    return assessment_pb2.RecordQualitativeScoreRequest(
        idempotency_key=form.get("idempotency_key", "") or uuid.uuid4().hex,
        county_id=county_id,
        level=level,  # type: ignore[arg-type]
        subject_id=subject_id,
        quarter=quarter,
        points=points,
        reason=form.get("reason", ""),
    )


# The fields of the campaign form, as posted (zone_ids may repeat).
CAMPAIGN_FIELDS = ("campaign_id", "name", "domain", "starts_on", "ends_on", "idempotency_key")


def campaign_request(
    county_id: str, form: Mapping[str, str], zone_ids: Sequence[str]
) -> assessment_pb2.DefineCampaignRequest:
    """The DefineCampaign request a posted campaign form makes (assessment judges it)."""
    return assessment_pb2.DefineCampaignRequest(
        idempotency_key=form.get("idempotency_key", "") or uuid.uuid4().hex,
        county_id=county_id,
        campaign_id=form.get("campaign_id", ""),
        name=form.get("name", ""),
        domain=form.get("domain", ""),
        starts_on=form.get("starts_on", ""),
        ends_on=form.get("ends_on", ""),
        zone_ids=list(zone_ids),
    )


# Blank lines the plan form offers for new targets, beside the plan's own.
NEW_PLAN_LINES = 2


@dataclass
class PlanFormLine:
    """One line of the plan form: a zone and KPI with a target per quarter (as typed)."""

    zone_id: str
    kpi: str
    targets: dict[int, str] = field(default_factory=dict)


def plan_form_lines(lines: Sequence[PlanLine]) -> list[PlanFormLine]:
    """The plan's lines as the form shows them, then blank lines for new targets."""
    shown = [
        PlanFormLine(
            line.zone_id, line.kpi, {q: str(cell.target) for q, cell in line.quarters.items()}
        )
        for line in lines
    ]
    return shown + [PlanFormLine("", "") for _ in range(NEW_PLAN_LINES)]


def posted_plan_lines(form: Mapping[str, str]) -> list[PlanFormLine]:
    """The lines of a posted plan form (`zone-N`, `kpi-N`, `target-N-Q`)."""
    try:
        count = min(int(form.get("lines", "0")), 500)
    except ValueError:
        count = 0
    return [
        PlanFormLine(
            form.get(f"zone-{row}", "").strip(),
            form.get(f"kpi-{row}", "").strip(),
            {q: form.get(f"target-{row}-{q}", "").strip() for q in (1, 2, 3, 4)},
        )
        for row in range(count)
    ]


def plan_request(
    county_id: str,
    year: int,
    themes: Mapping[int, str],
    lines: Sequence[PlanFormLine],
    idempotency_key: str,
) -> tuple[assessment_pb2.DefinePlanRequest, dict[str, str]]:
    """The DefinePlan request a posted plan form makes, and which input each target came from.

    The second value maps a violation's field (`targets[3].target`) to the form's input
    (`target-1-2`), so assessment's reasons appear beside what was typed. A target that is
    not a whole number is refused here, in the same shape, before any call.
    """
    request = assessment_pb2.DefinePlanRequest(
        idempotency_key=idempotency_key or uuid.uuid4().hex, county_id=county_id, year=year
    )
    for quarter, theme in sorted(themes.items()):
        if theme.strip():
            request.themes.append(assessment_pb2.QuarterTheme(quarter=quarter, theme=theme))
    inputs: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for row, line in enumerate(lines):
        typed = {q: value for q, value in line.targets.items() if value}
        if not typed:
            continue
        if not line.zone_id or not line.kpi:
            problems.setdefault(f"zone-{row}", []).append("choose a zone and an indicator")
            continue
        for quarter, value in sorted(typed.items()):
            cell = f"target-{row}-{quarter}"
            try:
                target = int(value)
            except ValueError:
                problems.setdefault(cell, []).append("must be a whole number")
                continue
            where = f"targets[{len(request.targets)}]"
            inputs.update(
                {
                    where: cell,
                    f"{where}.target": cell,
                    f"{where}.quarter": cell,
                    f"{where}.zone_id": f"zone-{row}",
                    f"{where}.kpi": f"kpi-{row}",
                }
            )
            request.targets.append(
                assessment_pb2.PlanTarget(
                    quarter=quarter, zone_id=line.zone_id, kpi=line.kpi, target=target
                )
            )
    if problems:
        raise Refused(400, "the plan has problems", problems)
    return request, inputs


def beside_inputs(
    violations: Mapping[str, list[str]], inputs: Mapping[str, str]
) -> dict[str, list[str]]:
    """Violations keyed by the form input they concern (unknown fields keep their own name)."""
    placed: dict[str, list[str]] = {}
    for name, reasons in violations.items():
        placed.setdefault(inputs.get(name, name), []).extend(reasons)
    return placed
