"""Event handlers that feed the KPI projection inside the consumer's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.facts import KpiIncrement, increments_of, merged
from services.assessment.domain.four_forms import FourFormsRules
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.attendance import AttendanceHandler
from services.assessment.handlers.collaboration import COLLABORATION_EVENTS, LetterLedgerHandler
from services.assessment.handlers.ledgers import Ledger, RowLedger, ledgers
from services.assessment.handlers.mappers import Mapper, Projection
from services.assessment.store.names import record_name
from services.assessment.store.projection import apply_increments, place_unit
from services.contracts.base import IntegrationEvent
from services.contracts.staffing import AttendanceRecorded, TownshipPlaced, UnitNamed
from services.runtime.envelope import Envelope
from services.runtime.inbox import BatchHandler

E = TypeVar("E", bound=IntegrationEvent)


class Subscriber(Protocol):
    """What the handlers are subscribed on: an EventConsumer, or rebuild.Subscriptions."""

    def on(
        self,
        event_class: type[E],
        handler: Callable[[AsyncSession, E, Envelope], Awaitable[None]],
        *,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        """Route `event_class`'s events to `handler`."""
        ...


def increments_for(
    mapper: Mapper, event: IntegrationEvent, envelope: Envelope, calendar: AssessmentCalendar
) -> list[KpiIncrement]:
    """The merged projection increments one event causes."""
    facts = mapper(event, envelope.time)
    return merged([item for fact in facts for item in increments_of(fact, calendar)])


def case_of(event: IntegrationEvent) -> str:
    """The clue/case an event concerns ("" for none): a clue's id is its case's id."""
    # The class's declared fields, not getattr with a default: a missing attribute goes
    # through pydantic's __getattr__ and its exception, a twentieth of a rebuild's time.
    fields = type(event).model_fields
    # A rectification item's deadline names the item in case_id, not a case.
    if "record_type" in fields and getattr(event, "record_type", "case") != "case":
        return ""
    for field in ("case_id", "clue_id"):
        if field in fields:
            value = getattr(event, field)
            if isinstance(value, str) and value:
                return value
    return ""


class ProjectionHandler:
    """Counts one event type; the inbox guarantees each event id is applied once."""

    def __init__(
        self, mapper: Mapper, calendar: AssessmentCalendar, ledgers: Sequence[Ledger] = ()
    ) -> None:
        self.mapper = mapper
        self.calendar = calendar
        self.ledgers = list(ledgers)

    async def __call__(
        self, session: AsyncSession, event: IntegrationEvent, envelope: Envelope
    ) -> None:
        """Apply the event's increments in the consumer's transaction."""
        increments = increments_for(self.mapper, event, envelope, self.calendar)
        await apply_increments(session, [(envelope.id, increments)], {envelope.id: case_of(event)})
        for ledger in self.ledgers:
            await ledger(session, event, envelope)


class ProjectionBatch:
    """Applies a run of counted events at once, as each one's ProjectionHandler would in turn.

    All their increments go in one tally upsert and one contribution insert; then each event's
    ledgers run in order, except that row-only ledgers (RowLedger) collect their rows and insert
    them together at the end. Neither changes what any handler reads meanwhile: ledgers do not
    read the projection, and row-only ledgers' tables are read by reports only.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, ProjectionHandler] = {}

    def add(self, event_type: str, handler: ProjectionHandler) -> None:
        """Apply `event_type`'s events in runs the way `handler` applies them one by one."""
        self._handlers[event_type] = handler

    async def __call__(
        self, session: AsyncSession, items: Sequence[tuple[IntegrationEvent, Envelope]]
    ) -> None:
        """Apply `items` (in order) in the consumer's transaction."""
        applied: list[tuple[str, list[KpiIncrement]]] = []
        cases: dict[str, str] = {}
        for event, envelope in items:
            handler = self._handlers[envelope.type]
            applied.append(
                (envelope.id, increments_for(handler.mapper, event, envelope, handler.calendar))
            )
            cases[envelope.id] = case_of(event)
        await apply_increments(session, applied, cases)
        rows: dict[RowLedger, list[dict[str, Any]]] = {}
        for event, envelope in items:
            for ledger in self._handlers[envelope.type].ledgers:
                if isinstance(ledger, RowLedger):
                    rows.setdefault(ledger, []).extend(ledger.rows(event, envelope))
                else:
                    await ledger(session, event, envelope)
        for row_ledger, collected in rows.items():
            await row_ledger.insert_all(session, collected)


async def township_placed(session: AsyncSession, event: TownshipPlaced, _: Envelope) -> None:
    """Add the township to the ranked units, so it is ranked even in a quarter with no events."""
    await place_unit(
        session,
        county_id=event.county_id,
        level=Level.TOWNSHIP,
        subject_id=event.township_id,
        zone_id=event.zone_id,
        name=event.township_name,
    )


async def unit_named(session: AsyncSession, event: UnitNamed, _: Envelope) -> None:
    """Keep a zone's or staff member's name for reports (the latest name wins)."""
    level = Level.ZONE if event.kind == "zone" else Level.PERSON
    await record_name(
        session, county_id=event.county_id, level=level, subject_id=event.unit_id, name=event.name
    )


def register_handlers(
    consumer: Subscriber,
    calendar: AssessmentCalendar,
    projections: Sequence[Projection],
    township_placed_class: type[TownshipPlaced] = TownshipPlaced,
    ledgers_by_type: Mapping[str, Sequence[Ledger]] | None = None,
    attendance_class: type[AttendanceRecorded] = AttendanceRecorded,
    forms: FourFormsRules | None = None,
    collaboration_classes: Sequence[type[IntegrationEvent]] = COLLABORATION_EVENTS,
    unit_named_class: type[UnitNamed] = UnitNamed,
) -> None:
    """Subscribe the projection to every mapped event type and to the township registry."""
    extra = ledgers(calendar, forms) if ledgers_by_type is None else ledgers_by_type
    # One batch handler for every counted type: a batch of mixed events is one run.
    batch = ProjectionBatch()
    for projection in projections:
        handler = ProjectionHandler(
            projection.mapper, calendar, extra.get(projection.event_class.event_type, ())
        )
        batch.add(projection.event_class.event_type, handler)
        consumer.on(projection.event_class, handler, batch_handler=batch)
    consumer.on(township_placed_class, township_placed)
    consumer.on(unit_named_class, unit_named)
    consumer.on(attendance_class, AttendanceHandler(calendar))
    letters = LetterLedgerHandler(calendar)
    for letter_class in collaboration_classes:
        consumer.on(letter_class, letters)
