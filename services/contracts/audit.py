"""The audit checkpoint every service publishes: its chain heads, anchored outside its database."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from services.contracts.base import IntegrationEvent

CHECKPOINTS_TOPIC = "xiezuo.audit.checkpoints"
# Checkpoints are evidence: kept for ever (a few per county and service per hour), never
# compacted, so a replayed old checkpoint can never push a newer one out.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    CHECKPOINTS_TOPIC: {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
}


class AuditCheckpointed(IntegrationEvent):
    """Every service, each period: entry `seq` of a county's audit chain has hash `head_hash`."""

    # Signed with the service's audit key (HMAC-SHA256), so a database writer who injects an
    # outbox row cannot forge one. Carries no record ids, actors or details: only the head.

    event_type: ClassVar[str] = "xiezuo.audit.checkpointed.v1"
    topic: ClassVar[str] = CHECKPOINTS_TOPIC
    key_pattern: ClassVar[str] = "<service>:<county_id>"

    # A checkpoint covers the whole county: every zone's entries are on the county's chain.
    zone_id: Literal["*"] = "*"
    service: str = Field(min_length=1, max_length=32)
    seq: int = Field(ge=1)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    checkpointed_at: datetime
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")

    def partition_key(self) -> str:
        """Per service and county: one chain's checkpoints stay in order on one partition."""
        return f"{self.service}:{self.county_id}"

    def subject_id(self) -> str | None:
        """The chain checkpointed."""
        return f"{self.service}:{self.county_id}"
