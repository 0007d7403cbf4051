"""Every published event type, looked up by its CloudEvents type name."""

from __future__ import annotations

import importlib
import pkgutil

import services.contracts as contracts_package
from services.contracts.base import IntegrationEvent


def _all_event_classes() -> list[type[IntegrationEvent]]:
    # Each service's contracts live in their own module; importing them all registers every
    # subclass, so adding an event never means editing a shared list.
    for module in pkgutil.iter_modules(contracts_package.__path__):
        importlib.import_module(f"{contracts_package.__name__}.{module.name}")
    found: list[type[IntegrationEvent]] = []
    pending = list(IntegrationEvent.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(contracts_package.__name__) and "event_type" in vars(cls):
            found.append(cls)
    return found


def _index() -> dict[str, type[IntegrationEvent]]:
    index: dict[str, type[IntegrationEvent]] = {}
    for cls in _all_event_classes():
        if cls.event_type in index and index[cls.event_type] is not cls:
            raise RuntimeError(f"two contracts claim {cls.event_type}")
        index[cls.event_type] = cls
    return dict(sorted(index.items()))


EVENT_TYPES: dict[str, type[IntegrationEvent]] = _index()
