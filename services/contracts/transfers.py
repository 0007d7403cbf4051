"""Clue transfers (线索移送) and designated jurisdiction (指定管辖) between member counties.

`ClueTransferred` crosses a county line on the letters topic, signed by the sending county like
every cross-county record and keyed by the receiving county. It carries only the fields the
transfer allowlist names (services/collaboration/rules/transfers.yaml): never a reporter's
identity, never the report text, never another subject. The receiver verifies it and publishes
`TransferredClueArrived` inside its own county, which cases registers as a new clue.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from services.contracts.base import IntegrationEvent
from services.contracts.collaboration import ANSWERS_TOPIC, LETTERS_TOPIC, CrossCountyRecord

# `transfer`: a county hands a clue to the county with jurisdiction over the subject;
# `designation`: the city commission designated the receiving county to handle it.
TransferMode = Literal["transfer", "designation"]


class ClueTransferred(CrossCountyRecord):
    """A clue handed from `from_county` to `county_id` (`letter_id` is the transfer id)."""

    event_type: ClassVar[str] = "xiezuo.collaboration.clue_transferred.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    mode: TransferMode
    # The city commission that designated the receiver; "" for a county's own transfer.
    designated_by: str = Field(default="", max_length=64)
    allowlist_version: int = Field(ge=1)
    # Only the names the mode's allowlist lists (checked at both ends).
    fields: dict[str, str] = Field(default_factory=dict)
    # A passage the sender chose, only when the mode allows one.
    excerpt: str = Field(default="", max_length=2000)
    sent_at: datetime


class TransferredClueArrived(IntegrationEvent):
    """A verified transfer, for cases in the receiving county to register as a clue.

    Zone `*`: the sender cannot know the receiver's zones; the county's leadership places it.
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.transferred_clue_arrived.v1"
    topic: ClassVar[str] = ANSWERS_TOPIC

    clue_id: str = Field(min_length=1, max_length=64)
    from_county: str = Field(min_length=1, max_length=64)
    mode: TransferMode
    designated_by: str = Field(default="", max_length=64)
    # The allowlisted fields as received (allegation_category always among them).
    fields: dict[str, str] = Field(default_factory=dict)
    excerpt: str = Field(default="", max_length=2000)
    sent_at: datetime

    def subject_id(self) -> str | None:
        """The new clue."""
        return self.clue_id


class TransferOutcome(CrossCountyRecord):
    """A step of a transferred clue in the receiving county, back to the county that sent it.

    `county_id` is the sending county (the addressee), `from_county` the receiving county that
    signs it, `letter_id` the transfer id. Only the stage, the kind of decision and when: never
    a name, a sanction's detail or the reasoning (the sender keeps a read-only trail).
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.transfer_outcome.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    # The workflow stage the clue is in now, e.g. "preliminary_verification", "closed".
    stage: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    # The kind of decision the step took (disposal way, decision kind), "" for none.
    decision: str = Field(default="", max_length=40, pattern=r"^([a-z][a-z0-9_]*)?$")
    at: datetime
