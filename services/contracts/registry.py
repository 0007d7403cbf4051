"""Every published event type, looked up by its CloudEvents type name."""

from __future__ import annotations

from services.contracts.base import IntegrationEvent
from services.contracts.intake import ClueRegistered

EVENT_TYPES: dict[str, type[IntegrationEvent]] = {
    event.event_type: event for event in (ClueRegistered,)
}
