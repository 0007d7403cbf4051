"""Event handlers that feed the KPI projection inside the consumer's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from services.assessment.domain.facts import KpiIncrement, increments_of, merged
from services.assessment.domain.four_forms import FourFormsRules
from services.assessment.domain.kpis import Level
from services.assessment.domain.quarter import AssessmentCalendar
from services.assessment.handlers.attendance import AttendanceHandler
from services.assessment.handlers.collaboration import COLLABORATION_EVENTS, LetterLedgerHandler
from services.assessment.handlers.ledgers import Ledger, ledgers
from services.assessment.handlers.mappers import Mapper, Projection
from services.assessment.store.names import record_name
from services.assessment.store.projection import apply_increments, place_unit
from services.contracts.base import IntegrationEvent
from services.contracts.staffing import AttendanceRecorded, TownshipPlaced, UnitNamed
from services.runtime.envelope import Envelope
from services.runtime.inbox import EventConsumer


def increments_for(
    mapper: Mapper, event: IntegrationEvent, envelope: Envelope, calendar: AssessmentCalendar
) -> list[KpiIncrement]:
    """The merged projection increments one event causes."""
    facts = mapper(event, envelope.time)
    return merged([item for fact in facts for item in increments_of(fact, calendar)])


def case_of(event: IntegrationEvent) -> str:
    """The clue/case an event concerns ("" for none): a clue's id is its case's id."""
    # A rectification item's deadline names the item in case_id, not a case.
    if getattr(event, "record_type", "case") != "case":
        return ""
    for field in ("case_id", "clue_id"):
        value = getattr(event, field, "")
        if isinstance(value, str) and value:
            return value
    return ""


class ProjectionHandler:
    """Counts one event type; the inbox guarantees each event id is applied once."""

    def __init__(
        self, mapper: Mapper, calendar: AssessmentCalendar, ledgers: Sequence[Ledger] = ()
    ) -> None:
        self._mapper = mapper
        self._calendar = calendar
        self._ledgers = list(ledgers)

    async def __call__(
        self, session: AsyncSession, event: IntegrationEvent, envelope: Envelope
    ) -> None:
        """Apply the event's increments in the consumer's transaction."""
        increments = increments_for(self._mapper, event, envelope, self._calendar)
        await apply_increments(session, [(envelope.id, increments)], {envelope.id: case_of(event)})
        for ledger in self._ledgers:
            await ledger(session, event, envelope)


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
    consumer: EventConsumer,
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
    for projection in projections:
        handler = ProjectionHandler(
            projection.mapper, calendar, extra.get(projection.event_class.event_type, ())
        )
        consumer.on(projection.event_class, handler)
    consumer.on(township_placed_class, township_placed)
    consumer.on(unit_named_class, unit_named)
    consumer.on(attendance_class, AttendanceHandler(calendar))
    letters = LetterLedgerHandler(calendar)
    for letter_class in collaboration_classes:
        consumer.on(letter_class, letters)
