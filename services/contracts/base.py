"""Base of every integration event published on Kafka."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError


class IntegrationEvent(BaseModel):
    """An event on the bus: its type name, topic and partition key come from the class."""

    # Strict where events are made (a misspelt or stray field, e.g. an identity, fails at the
    # producer); `read` is the tolerant side consumers use.
    model_config = ConfigDict(extra="forbid", frozen=True)

    # `xiezuo.<service>.<event>.v<N>`: a breaking change is a new class with a new version.
    event_type: ClassVar[str]
    topic: ClassVar[str]
    # The Kafka key as consumers see it; a class that overrides `partition_key` says so here.
    key_pattern: ClassVar[str] = "<county_id>:<zone_id>"

    county_id: str
    zone_id: str

    def partition_key(self) -> str:
        """Zone by default, so one zone's stream stays in order and is one unit of load."""
        return f"{self.county_id}:{self.zone_id}"

    def subject_id(self) -> str | None:
        """The CloudEvents `subject`: the aggregate the event is about, if any."""
        return None

    @classmethod
    def read(cls, data: bytes | str) -> Self:
        """Parse a published payload, ignoring fields a newer producer added.

        Additive changes to a `.vN` event (an optional field) must not dead-letter the events
        at consumers that are not upgraded yet, e.g. during a rolling deploy. Anything else
        wrong with the payload still fails validation.
        """
        try:
            return cls.model_validate_json(data)
        except ValidationError as invalid:
            errors = invalid.errors()
            unknown = [error["loc"] for error in errors if error["type"] == "extra_forbidden"]
            if not unknown or len(unknown) != len(errors):
                raise
        payload: Any = json.loads(data)
        for location in unknown:
            *path, name = location
            holder = payload
            for step in path:
                holder = holder[step]
            del holder[name]
        return cls.model_validate(payload)
