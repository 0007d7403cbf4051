"""One mapper per consumed event type: the event → the facts it makes countable.

A mapper takes the event and the CloudEvent time (`ce_time`), used only when the event carries
no time of its own. Adding an event type means adding one function here and one line to
`projections()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from services.assessment.domain.facts import Fact
from services.assessment.domain.kpis import Kpi, decision_kpi, detailed_kpi
from services.contracts.base import IntegrationEvent
from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseStepRecorded,
    CaseTransferred,
    ClueDisposed,
    DeadlineBreached,
    ExtensionGranted,
    RectificationClosed,
    RectificationOpened,
    StageChanged,
    TeamRequested,
)
from services.contracts.intake import (
    ClueRegistered,
    FeedbackDeadlineBreached,
    ReportAccepted,
    ReportForwarded,
    ReportLinked,
    ReportRejected,
)
from services.contracts.staffing import (
    AssignmentDeclined,
    DrawOverridden,
    RecusalRecorded,
    TeamAssigned,
    TeamUnfillable,
    TrainingRecorded,
)

# The workflow action cases records when a hearing returns a case for re-investigation.
SEND_BACK_ACTION = "send_back"
# Appeals (复审/复核): filed, and decided with a changed outcome (a quality signal).
FILE_APPEAL_ACTION = "file_appeal"
DECIDE_APPEAL_ACTION = "decide_appeal"
APPEAL_CHANGED = "changed"

Mapper = Callable[[Any, datetime], Sequence[Fact]]


@dataclass(frozen=True)
class Projection:
    """Which mapper counts which event type."""

    event_class: type[IntegrationEvent]
    mapper: Mapper


def clue_registered(event: ClueRegistered, _ce_time: datetime) -> list[Fact]:
    """A clue received by the zone, attributed to the township it concerns."""
    return [
        Fact(
            Kpi.CLUES_RECEIVED,
            event.registered_at,
            event.county_id,
            event.zone_id,
            township_id=event.township_id,
        )
    ]


def team_requested(event: TeamRequested, _ce_time: datetime) -> list[Fact]:
    """The zone needed a team (the denominator of its fill rate)."""
    return [Fact(Kpi.TEAMS_REQUESTED, event.requested_at, event.county_id, event.zone_id)]


def team_assigned(event: TeamAssigned, _ce_time: datetime) -> list[Fact]:
    """Nothing counted from the draw's own time: a team counts in the quarter of its request.

    teams_assigned (zone) and team_assignments (members and their home townships) are
    derived when read from the team ledger (store/staff_work.py: team_counts), because a
    back-entered step's team is drawn months after the step's date.
    """
    return []


def team_unfillable(event: TeamUnfillable, _ce_time: datetime) -> list[Fact]:
    """The zone could not staff a stage."""
    return [Fact(Kpi.TEAMS_UNFILLABLE, event.decided_at, event.county_id, event.zone_id)]


def recusal_recorded(event: RecusalRecorded, _ce_time: datetime) -> list[Fact]:
    """A granted recusal is counted for the zone and the person; a refused one is not."""
    if not event.granted:
        return []
    return [
        Fact(
            Kpi.RECUSALS,
            event.decided_at,
            event.county_id,
            event.zone_id,
            person_ids=(event.person_id,),
        )
    ]


def _zone_fact(kpi: str, event: IntegrationEvent, at: datetime) -> Fact:
    return Fact(kpi, at, event.county_id, event.zone_id)


def report_accepted(event: ReportAccepted, _ce_time: datetime) -> list[Fact]:
    """A report accepted (受理) by the zone."""
    return [_zone_fact(Kpi.REPORTS_ACCEPTED, event, event.decided_at)]


def report_rejected(event: ReportRejected, _ce_time: datetime) -> list[Fact]:
    """A report not accepted, by ground (court matter, other agency, no substance)."""
    return [
        _zone_fact(Kpi.REPORTS_REJECTED, event, event.decided_at),
        _zone_fact(detailed_kpi(Kpi.REPORTS_REJECTED, event.ground), event, event.decided_at),
    ]


def report_forwarded(event: ReportForwarded, _ce_time: datetime) -> list[Fact]:
    """A wrong-level report forwarded (转办), and whether within the working-day limit."""
    facts = [_zone_fact(Kpi.REPORTS_FORWARDED, event, event.decided_at)]
    if event.within_limit:
        facts.append(_zone_fact(Kpi.REPORTS_FORWARDED_IN_TIME, event, event.decided_at))
    return facts


def feedback_deadline_breached(event: FeedbackDeadlineBreached, _ce_time: datetime) -> list[Fact]:
    """A real-name reporter was not told in time; counted when the limit passed."""
    return [_zone_fact(Kpi.FEEDBACK_DEADLINES_BREACHED, event, event.due_at)]


def _case_fact(kpi: str, event: CaseStepRecorded) -> Fact:
    return Fact(
        kpi, event.occurred_at, event.county_id, event.zone_id, township_id=event.township_id
    )


def clue_disposed(event: ClueDisposed, _ce_time: datetime) -> list[Fact]:
    """A clue disposed of, and by which of the four ways (四类处置方式) when cases says."""
    facts = [_case_fact(Kpi.CLUES_DISPOSED, event)]
    way = event.detail.get("way")
    if isinstance(way, str) and way:
        facts.append(_case_fact(detailed_kpi(Kpi.CLUES_DISPOSED, way), event))
    return facts


def case_filed(event: CaseFiled, _ce_time: datetime) -> list[Fact]:
    """A case filed (立案)."""
    return [_case_fact(Kpi.CASES_FILED, event)]


def extension_granted(event: ExtensionGranted, _ce_time: datetime) -> list[Fact]:
    """A time limit extended."""
    return [_case_fact(Kpi.EXTENSIONS, event)]


def case_decided(event: CaseDecided, _ce_time: datetime) -> list[Fact]:
    """A decision, by kind (the four-forms distribution), and whether anyone was sanctioned."""
    facts = [_case_fact(Kpi.DECISIONS, event)]
    decision = event.detail.get("decision")
    if isinstance(decision, str) and decision:
        facts.append(_case_fact(decision_kpi(decision), event))
    if event.detail.get("sanctions"):
        facts.append(_case_fact(Kpi.PEOPLE_SANCTIONED, event))
    return facts


def case_transferred(event: CaseTransferred, _ce_time: datetime) -> list[Fact]:
    """A case transferred to the procuratorate (移送检察机关), with its 双开 when decided."""
    facts = [_case_fact(Kpi.TRANSFERS_TO_PROCURATORATE, event)]
    if event.detail.get("sanctions"):
        facts.append(_case_fact(Kpi.PEOPLE_SANCTIONED, event))
    return facts


def case_closed(event: CaseClosed, _ce_time: datetime) -> list[Fact]:
    """A clue or case closed."""
    return [_case_fact(Kpi.CASES_CLOSED, event)]


def stage_changed(event: StageChanged, _ce_time: datetime) -> list[Fact]:
    """A hearing's send-back and appeals (filed, outcome changed) count; other steps do not."""
    if event.action == SEND_BACK_ACTION:
        return [_case_fact(Kpi.CASES_SENT_BACK, event)]
    if event.action == FILE_APPEAL_ACTION:
        return [_case_fact(Kpi.APPEALS_FILED, event)]
    if event.action == DECIDE_APPEAL_ACTION and event.detail.get("choice") == APPEAL_CHANGED:
        return [_case_fact(Kpi.APPEALS_CHANGED, event)]
    return []


def deadline_breached(event: DeadlineBreached, _ce_time: datetime) -> list[Fact]:
    """A time limit missed, counted in the quarter it fell due, in total and by kind."""
    return [
        _zone_fact(Kpi.DEADLINES_BREACHED, event, event.due_at),
        _zone_fact(detailed_kpi(Kpi.DEADLINES_BREACHED, event.kind), event, event.due_at),
    ]


def draw_overridden(event: DrawOverridden, _ce_time: datetime) -> list[Fact]:
    """A zone chief replaced a fair draw: counted against the zone."""
    return [_zone_fact(Kpi.DRAW_OVERRIDES, event, event.overridden_at)]


def assignment_declined(event: AssignmentDeclined, _ce_time: datetime) -> list[Fact]:
    """A drawn person declined (with a reason)."""
    return [
        Fact(
            Kpi.ASSIGNMENTS_DECLINED,
            event.declined_at,
            event.county_id,
            event.zone_id,
            person_ids=(event.person_id,),
        )
    ]


def report_linked(event: ReportLinked, _ce_time: datetime) -> list[Fact]:
    """A repeated report joined an existing clue (重复举报): counted, not a new clue."""
    return [
        Fact(
            Kpi.REPORTS_LINKED,
            event.linked_at,
            event.county_id,
            event.zone_id,
            township_id=event.township_id,
        )
    ]


def rectification_opened(event: RectificationOpened, _ce_time: datetime) -> list[Fact]:
    """A rectification item (整改) opened for a township."""
    return [
        Fact(
            Kpi.RECTIFICATION_OPENED,
            event.opened_at,
            event.county_id,
            event.zone_id,
            township_id=event.township_id,
        )
    ]


def rectification_closed(event: RectificationClosed, _ce_time: datetime) -> list[Fact]:
    """A rectification item verified done, and whether by its due date."""
    kpis = [Kpi.RECTIFICATION_CLOSED] + (
        [] if event.overdue else [Kpi.RECTIFICATION_CLOSED_IN_TIME]
    )
    return [
        Fact(kpi, event.closed_at, event.county_id, event.zone_id, township_id=event.township_id)
        for kpi in kpis
    ]


def _midday(day: date) -> datetime:
    # A local calendar day carried as a date: noon UTC falls on the same date from UTC-11 to
    # UTC+11, so the county's calendar puts it in the right quarter.
    return datetime.combine(day, time(12), tzinfo=UTC)


def training_recorded(event: TrainingRecorded, _ce_time: datetime) -> list[Fact]:
    """Training time in whole minutes (integers replay exactly), in total and by type."""
    minutes = round(event.hours * 60)
    at = _midday(event.on_date)
    return [
        Fact(
            kpi,
            at,
            event.county_id,
            event.zone_id,
            delta=minutes,
            person_ids=(event.person_id,),
        )
        for kpi in (
            Kpi.TRAINING_MINUTES.value,
            detailed_kpi(Kpi.TRAINING_MINUTES, event.training_type),
        )
    ]


def projections() -> list[Projection]:
    """Every event type assessment counts, with its mapper."""
    return [
        Projection(ClueRegistered, clue_registered),
        Projection(ReportLinked, report_linked),
        Projection(ReportAccepted, report_accepted),
        Projection(ReportRejected, report_rejected),
        Projection(ReportForwarded, report_forwarded),
        Projection(FeedbackDeadlineBreached, feedback_deadline_breached),
        Projection(TeamRequested, team_requested),
        Projection(ClueDisposed, clue_disposed),
        Projection(CaseFiled, case_filed),
        Projection(ExtensionGranted, extension_granted),
        Projection(CaseDecided, case_decided),
        Projection(CaseTransferred, case_transferred),
        Projection(CaseClosed, case_closed),
        Projection(StageChanged, stage_changed),
        Projection(DeadlineBreached, deadline_breached),
        Projection(RectificationOpened, rectification_opened),
        Projection(RectificationClosed, rectification_closed),
        Projection(TeamAssigned, team_assigned),
        Projection(TeamUnfillable, team_unfillable),
        Projection(RecusalRecorded, recusal_recorded),
        Projection(DrawOverridden, draw_overridden),
        Projection(AssignmentDeclined, assignment_declined),
        Projection(TrainingRecorded, training_recorded),
    ]
