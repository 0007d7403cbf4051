"""Records kept beside the KPI counts: campaign clues, case milestones, limit clocks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.four_forms import FourFormsRules, load_four_forms
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.domain.staff_work import (
    APPEAL_CHANGED,
    SENT_BACK,
    STAGE_CLOCKS,
    stage_ended,
)
from services.assessment.domain.timeliness import (
    DISPOSAL,
    INVESTIGATION,
    breach_clock,
    investigation_finished,
)
from services.assessment.store.campaigns import record_campaign_rectification
from services.assessment.store.four_forms import outcome_row
from services.assessment.store.staff_work import Member, request_row, step_row, team_row
from services.assessment.store.tables import (
    CampaignClue,
    CaseMilestone,
    CaseSubject,
    CaseTeam,
    CaseWorkStep,
    FormOutcome,
    TeamRequest,
)
from services.assessment.store.timeliness import record_breach, record_finish
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
from services.contracts.intake import ClueRegistered
from services.contracts.staffing import TeamAssigned
from services.runtime.bulk import BulkInsert, dialect_insert
from services.runtime.envelope import Envelope

Ledger = Callable[[AsyncSession, Any, Envelope], Awaitable[None]]


class RowLedger:
    """A ledger that only inserts rows, the first of a key winning (ON CONFLICT DO NOTHING).

    Called per event it inserts that event's rows; a consumer's batch instead collects the
    rows of all its events (`rows`) and inserts them with one statement (`insert_all`). Only
    for tables no other ledger reads while events are applied, so the later insert changes
    nothing another handler sees.
    """

    def __init__(
        self,
        model: Any,
        rows: Callable[[Any, Envelope], list[dict[str, Any]]],
        conflict: Sequence[str] = (),
    ) -> None:
        self._table = model.__table__
        self.rows = rows
        # Compiled once per dialect and bound by the driver (a batch's rows as plain tuples):
        # SQLAlchemy's own executemany built every row's parameters again, a tenth of a
        # catch-up batch's time on the event loop.
        self._insert = BulkInsert(
            self._table,
            lambda dialect: dialect_insert(dialect, self._table).on_conflict_do_nothing(
                index_elements=list(conflict) or None
            ),
        )

    async def __call__(self, session: AsyncSession, event: Any, envelope: Envelope) -> None:
        """The rows of one event."""
        await self.insert_all(session, self.rows(event, envelope))

    async def insert_all(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` (in their order) in one statement run over all of them."""
        if rows:
            await self._insert.rows(await session.connection(), rows)


def _campaign_clue_rows(event: ClueRegistered, _: Envelope) -> list[dict[str, Any]]:
    """A clue reported under a special campaign joins that campaign's view (idempotent)."""
    if not event.campaign_id:
        return []
    return [
        {
            "clue_id": event.clue_id,
            "county_id": event.county_id,
            "zone_id": event.zone_id,
            "campaign_id": event.campaign_id,
            "categories": json.dumps(sorted(event.allegation_categories), ensure_ascii=False),
            "registered_at": event.registered_at,
        }
    ]


campaign_clue = RowLedger(CampaignClue, _campaign_clue_rows, conflict=("clue_id",))


def milestone(name: str) -> RowLedger:
    """A ledger that records the case step as milestone `name`.

    Rows, not table models: a catch-up batch collects them while reading (outside the write
    lock) and inserts them with one statement; building a model per event had taken 28 % of
    the Python time a PostgreSQL batch spent holding that lock (bench/README.md, "Session 20").
    """

    def rows(event: CaseStepRecorded, envelope: Envelope) -> list[dict[str, Any]]:
        return [
            {
                "case_id": event.case_id,
                "milestone": name,
                "event_id": envelope.id,
                "county_id": event.county_id,
                "occurred_at": event.occurred_at,
            }
        ]

    # The event id is in the key and the inbox lets an event through once: nothing conflicts.
    return RowLedger(CaseMilestone, rows)


class LimitClockLedger:
    """Records when a step stops a judged clock (disposal, or leaving the investigation)."""

    def __init__(self, calendar: AssessmentCalendar, disposal: bool) -> None:
        self._calendar = calendar
        self._disposal = disposal

    async def __call__(
        self, session: AsyncSession, event: CaseStepRecorded, envelope: Envelope
    ) -> None:
        """Keep the finish beside the counts; the within-limit verdict is taken when read."""
        if self._disposal:
            clock = DISPOSAL
        elif investigation_finished(event.from_stage, event.to_stage):
            clock = INVESTIGATION
        else:
            return
        await record_finish(
            session,
            county_id=event.county_id,
            case_id=event.case_id,
            clock=clock,
            zone_id=event.zone_id,
            township_id=event.township_id,
            quarter=self._calendar.quarter_of(event.occurred_at),
            finished_at=event.occurred_at,
            event_id=envelope.id,
        )


async def limit_breach(session: AsyncSession, event: DeadlineBreached, envelope: Envelope) -> None:
    """A missed disposal or investigation limit, kept per deadline to judge its clock."""
    clock = breach_clock(event.kind, event.record_type)
    if clock is None:
        return
    await record_breach(
        session,
        county_id=event.county_id,
        case_id=event.case_id,
        clock=clock,
        deadline_id=event.deadline_id,
        due_at=event.due_at,
        event_id=envelope.id,
    )


# The rectification source that names a campaign in source_ref (cases' SOURCES).
CAMPAIGN_SOURCE = "campaign"


async def rectification_opened(
    session: AsyncSession, event: RectificationOpened, _: Envelope
) -> None:
    """A rectification item opened under a campaign joins that campaign's progress."""
    if event.source == CAMPAIGN_SOURCE and event.source_ref:
        await record_campaign_rectification(
            session,
            item_id=event.item_id,
            county_id=event.county_id,
            zone_id=event.zone_id,
            campaign_id=event.source_ref,
            opened_at=event.opened_at,
        )


async def rectification_closed(
    session: AsyncSession, event: RectificationClosed, _: Envelope
) -> None:
    """A campaign's rectification item verified done, on time unless overdue."""
    if event.source == CAMPAIGN_SOURCE and event.source_ref:
        await record_campaign_rectification(
            session,
            item_id=event.item_id,
            county_id=event.county_id,
            zone_id=event.zone_id,
            campaign_id=event.source_ref,
            closed_at=event.closed_at,
            overdue=event.overdue,
        )


def _case_subject_rows(event: ClueRegistered, _: Envelope) -> list[dict[str, Any]]:
    """Whose clue it is, as a name-free key: one person's cases count once in the four forms."""
    subject = event.subject
    return [
        {
            "county_id": event.county_id,
            "case_id": event.clue_id,
            "subject_key": subject_key(
                event.county_id, subject.name, subject.unit, subject.township_id
            ),
        }
    ]


# First registration wins (the same statement record_subject runs).
case_subject = RowLedger(CaseSubject, _case_subject_rows)


def subject_key(county_id: str, name: str, unit: str, township_id: str) -> str:
    """A stable key for the official reported; the name itself is not kept."""
    raw = "\x1f".join((county_id, name.strip(), unit.strip(), township_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# Workflow actions whose step places the case's subject in one of the four forms.
INQUIRY_OUTCOME = "record_inquiry_outcome"
VERIFICATION_OUTCOME = "approve_outcome"
DECISION = "approve_decision"
APPEAL_DECIDED = "decide_appeal"


def _sanctions(detail: dict[str, Any]) -> list[tuple[str, str]]:
    items = detail.get("sanctions")
    return (
        [
            (str(item.get("track", "")), str(item.get("kind", "")))
            for item in items
            if isinstance(item, dict)
        ]
        if isinstance(items, list)
        else []
    )


def _measures(detail: dict[str, Any]) -> list[str]:
    items = detail.get("organisational_measures")
    return [str(item) for item in items] if isinstance(items, list) else []


def classify(event: CaseStepRecorded, forms: FourFormsRules) -> tuple[int, str, bool] | None:
    """The form a step places its case's subject in, what placed it, and whether it replaces
    the case's earlier outcome (a changed appeal); None for a step that places nobody."""
    detail, choice = event.detail, str(event.detail.get("choice", ""))
    if event.action == INQUIRY_OUTCOME:
        form = forms.inquiry(choice)
        return None if form is None else (form, choice, False)
    if event.action == VERIFICATION_OUTCOME:
        outcome = str(detail.get("outcome", ""))
        form = forms.verification(outcome)
        return None if form is None else (form, outcome, False)
    decision = detail.get("decision")
    if not isinstance(decision, str) or not decision:
        return None
    changed = event.action == APPEAL_DECIDED and choice == "changed"
    if event.action != DECISION and not changed:
        return None
    form, basis = forms.decision(decision, _sanctions(detail), _measures(detail))
    return form, basis, changed


class FormLedger(RowLedger):
    """Keeps each step that places a case's subject in one of the four forms.

    Row-only (the first row of an event wins): nothing reads the outcomes while events are
    applied, so a batch inserts all of its outcomes with one statement.
    """

    def __init__(self, calendar: AssessmentCalendar, forms: FourFormsRules) -> None:
        self._calendar = calendar
        self._forms = forms
        super().__init__(FormOutcome, self._outcome_rows)

    def _outcome_rows(self, event: CaseStepRecorded, envelope: Envelope) -> list[dict[str, Any]]:
        """Classify the step by the rules in use; nothing for a step that places nobody."""
        placed = classify(event, self._forms)
        if placed is None:
            return []
        form, basis, replaces = placed
        return [
            outcome_row(
                county_id=event.county_id,
                case_id=event.case_id,
                event_id=envelope.id,
                zone_id=event.zone_id,
                township_id=event.township_id,
                quarter=self._calendar.quarter_of(event.occurred_at),
                occurred_at=event.occurred_at,
                form=form,
                basis=basis,
                replaces=replaces,
            )
        ]


def work_step_ledger(calendar: AssessmentCalendar) -> RowLedger:
    """Keeps each step that ends a team's stage or judges its work (sent back, appeal changed)."""

    def rows(event: CaseStepRecorded, envelope: Envelope) -> list[dict[str, Any]]:
        kinds = []
        ended = stage_ended(event.from_stage, event.to_stage)
        if ended:
            kinds.append(ended)
        if event.action == "send_back":
            kinds.append(SENT_BACK)
        if event.action == APPEAL_DECIDED and event.detail.get("choice") == "changed":
            kinds.append(APPEAL_CHANGED)
        return [
            step_row(
                county_id=event.county_id,
                case_id=event.case_id,
                event_id=envelope.id,
                kind=kind,
                quarter=calendar.quarter_of(event.occurred_at),
                occurred_at=event.occurred_at,
            )
            for kind in kinds
        ]

    return RowLedger(CaseWorkStep, rows)


class TeamLedger:
    """Keeps team requests and the teams drawn for them, each in its quarter."""

    def __init__(self, calendar: AssessmentCalendar) -> None:
        self._calendar = calendar
        self.requested = RowLedger(TeamRequest, self._request_rows)
        self.assigned = RowLedger(CaseTeam, self._team_rows)

    def _request_rows(self, event: TeamRequested, _: Envelope) -> list[dict[str, Any]]:
        """When a team's work began: the step's own time (back-entered steps too)."""
        return [
            request_row(
                county_id=event.county_id,
                request_id=event.request_id,
                case_id=event.case_id,
                stage=event.stage,
                requested_at=event.requested_at,
                quarter=self._calendar.quarter_of(event.requested_at),
            )
        ]

    def _team_rows(self, event: TeamAssigned, envelope: Envelope) -> list[dict[str, Any]]:
        """Who is on the team for a case's stage (the latest draw for a request works it)."""
        return [
            team_row(
                county_id=event.county_id,
                event_id=envelope.id,
                case_id=event.case_id,
                request_id=event.request_id,
                stage=event.stage,
                zone_id=event.zone_id,
                members=[
                    Member(member.person_id, member.home_township_id, member.leader)
                    for member in event.members
                ],
                assigned_at=event.assigned_at,
                quarter=self._calendar.quarter_of(event.assigned_at),
            )
        ]


async def stage_breach(session: AsyncSession, event: DeadlineBreached, envelope: Envelope) -> None:
    """A team stage's limit missed (verification, hearing, review), to judge its members."""
    stage = STAGE_CLOCKS.get(event.kind)
    if stage is None or event.record_type != "case":
        return
    await record_breach(
        session,
        county_id=event.county_id,
        case_id=event.case_id,
        clock=stage,
        deadline_id=event.deadline_id,
        due_at=event.due_at,
        event_id=envelope.id,
    )


def ledgers(
    calendar: AssessmentCalendar | None = None, forms: FourFormsRules | None = None
) -> dict[str, Sequence[Ledger]]:
    """Ledgers by event type name."""
    calendar = calendar or AssessmentCalendar()
    forms = forms or load_four_forms()
    leaves_investigation = LimitClockLedger(calendar, disposal=False)
    placed = FormLedger(calendar, forms)
    work = work_step_ledger(calendar)
    teams = TeamLedger(calendar)
    return {
        ClueRegistered.event_type: [campaign_clue, case_subject],
        ClueDisposed.event_type: [LimitClockLedger(calendar, disposal=True)],
        CaseFiled.event_type: [milestone("filed"), work],
        ExtensionGranted.event_type: [work],
        CaseDecided.event_type: [milestone("decided"), leaves_investigation, placed, work],
        CaseTransferred.event_type: [milestone("transferred"), leaves_investigation, placed, work],
        CaseClosed.event_type: [milestone("closed"), leaves_investigation, placed, work],
        StageChanged.event_type: [leaves_investigation, placed, work],
        DeadlineBreached.event_type: [limit_breach, stage_breach],
        RectificationOpened.event_type: [rectification_opened],
        RectificationClosed.event_type: [rectification_closed],
        TeamRequested.event_type: [teams.requested],
        TeamAssigned.event_type: [teams.assigned],
    }
