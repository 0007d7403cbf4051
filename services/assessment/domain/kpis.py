"""What is counted: the KPI names and the levels at which units are assessed."""

from __future__ import annotations

import enum

MAX_DETAIL = 32


class Level(enum.StrEnum):
    """The kind of unit a scorecard is about."""

    ZONE = "zone"
    TOWNSHIP = "township"
    PERSON = "person"


class Kpi(enum.StrEnum):
    """Counted indicators (量化考核). Every value is an integer so replays sum exactly."""

    REPORTS_ACCEPTED = "reports_accepted"
    REPORTS_REJECTED = "reports_rejected"
    REPORTS_FORWARDED = "reports_forwarded"
    REPORTS_FORWARDED_IN_TIME = "reports_forwarded_in_time"
    FEEDBACK_DEADLINES_BREACHED = "feedback_deadlines_breached"
    CLUES_RECEIVED = "clues_received"
    CLUES_DISPOSED = "clues_disposed"
    CLUES_DISPOSED_IN_TIME = "clues_disposed_in_time"
    CASES_FILED = "cases_filed"
    INVESTIGATIONS_FINISHED = "investigations_finished"
    INVESTIGATIONS_FINISHED_IN_TIME = "investigations_finished_in_time"
    EXTENSIONS = "extensions"
    DEADLINES_BREACHED = "deadlines_breached"
    CASES_SENT_BACK = "cases_sent_back"
    DECISIONS = "decisions"
    PEOPLE_SANCTIONED = "people_sanctioned"
    CASES_CLOSED = "cases_closed"
    TRANSFERS_TO_PROCURATORATE = "transfers_to_procuratorate"
    REPORTS_LINKED = "reports_linked"
    RECTIFICATION_OPENED = "rectification_opened"
    RECTIFICATION_CLOSED = "rectification_closed"
    RECTIFICATION_CLOSED_IN_TIME = "rectification_closed_in_time"
    TRAINING_MINUTES = "training_minutes"
    ATTENDANCE_DAYS = "attendance_days"
    TEAMS_REQUESTED = "teams_requested"
    TEAMS_ASSIGNED = "teams_assigned"
    TEAM_ASSIGNMENTS = "team_assignments"
    TEAMS_UNFILLABLE = "teams_unfillable"
    DRAW_OVERRIDES = "draw_overrides"
    ASSIGNMENTS_DECLINED = "assignments_declined"
    RECUSALS = "recusals"
    # 四种形态: people dealt with, once per quarter in their highest form (`four_forms.1`..`.4`).
    FOUR_FORMS = "four_forms"
    APPEALS_FILED = "appeals_filed"
    APPEALS_CHANGED = "appeals_changed"
    # A staff member's share of the work: team stages they finished (`stages_completed.<stage>`),
    # led, finished within the stage's limit or late.
    STAGES_COMPLETED = "stages_completed"
    STAGES_LED = "stages_led"
    STAGES_COMPLETED_IN_TIME = "stages_completed_in_time"
    STAGES_LATE = "stages_late"


def decision_kpi(decision_type: str) -> str:
    """The per-type decision counter (the four-forms distribution), e.g. `decisions.warning`."""
    return f"{Kpi.DECISIONS.value}.{decision_type[:MAX_DETAIL]}"


def detailed_kpi(kpi: Kpi, detail: str) -> str:
    """A per-kind breakdown of a counter, e.g. `deadlines_breached.investigation`."""
    # Details come from other services' free-form fields; the projection key has 64 chars.
    return f"{kpi.value}.{detail[:MAX_DETAIL]}"


class CollaborationKpi(enum.StrEnum):
    """Help between counties (协查): derived when read from the letter ledger."""

    # Letters the county approved and sent (county level: the letter names no zone).
    LETTERS_SENT = "letters_sent"
    # Help received: another county answered a letter asked from one of the zone's cases.
    LETTERS_ANSWERED_FOR_US = "letters_answered_for_us"
    # Help given: the county answered another county's letter (county level: no zone known).
    LETTERS_ANSWERED_BY_US = "letters_answered_by_us"
    # Letters asked of the county that passed their due date unanswered (county level).
    LETTERS_OVERDUE = "letters_overdue"
    # Letters asked from the zone's cases that the other county let pass their due date.
    LETTERS_OVERDUE_FOR_US = "letters_overdue_for_us"
