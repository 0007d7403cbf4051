"""Base of every integration event published on Kafka."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class IntegrationEvent(BaseModel):
    """An event on the bus: its type name, topic and partition key come from the class."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # `xiezuo.<service>.<event>.v<N>`: a breaking change is a new class with a new version.
    event_type: ClassVar[str]
    topic: ClassVar[str]

    county_id: str
    zone_id: str

    def partition_key(self) -> str:
        """Zone by default, so one zone's stream stays in order and is one unit of load."""
        return f"{self.county_id}:{self.zone_id}"

    def subject_id(self) -> str | None:
        """The CloudEvents `subject`: the aggregate the event is about, if any."""
        return None
