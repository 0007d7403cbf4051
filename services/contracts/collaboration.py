"""Events of the collaboration service: records between counties, and answers for a case.

Records on LETTERS_TOPIC cross county lines: each is signed by the sending county (the
`signature` field, Ed25519 over the CloudEvent id, type, source, subject and this payload
without the signature; docs/collaboration.md) and keyed by the county it is addressed to
(`county_id`). They carry only what the letter kind's allowlist names: never a reporter's
identity, never the report text, never another subject.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.base import IntegrationEvent

LETTERS_TOPIC = "xiezuo.collaboration.letters"
# Inside one county: answers for a case's history, due-soon reminders, overdue letters.
ANSWERS_TOPIC = "xiezuo.collaboration.answers"
LetterKindName = Literal[
    "verify_fact", "witness_statement", "registry_check", "locate_person", "other"
]
# Kinds of joint investigation (services/collaboration/domain/joint_case.py) and their ends.
JointKindName = Literal["discipline", "duty_violation", "duty_crime"]
JointOutcomeName = Literal["concluded", "referred", "withdrawn"]


class CrossCountyRecord(IntegrationEvent):
    """A signed record from one member county to another (`county_id` is the addressee)."""

    key_pattern: ClassVar[str] = "<county_id>"

    zone_id: Literal["*"] = "*"
    letter_id: str = Field(min_length=1, max_length=64)
    from_county: str = Field(min_length=1, max_length=64)
    network_version: int = Field(ge=1)
    # Base64 Ed25519 signature; "" on the wire means unsigned (dead-lettered by the receiver).
    signature: str = Field(default="", max_length=200)

    def partition_key(self) -> str:
        """The addressee county: one county's incoming letters stay in order."""
        return self.county_id

    def subject_id(self) -> str | None:
        """The letter."""
        return self.letter_id


class LetterSent(CrossCountyRecord):
    """An approved assistance letter (协查函) from `from_county` to `county_id`."""

    event_type: ClassVar[str] = "xiezuo.collaboration.letter_sent.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    kind: LetterKindName
    allowlist_version: int = Field(ge=1)
    question: str = Field(min_length=1, max_length=2000)
    # Only the names the kind's allowlist lists (checked at both ends).
    fields: dict[str, str] = Field(default_factory=dict)
    # A passage of the case file the sender chose; only for kinds that allow one.
    excerpt: str = Field(default="", max_length=2000)
    due_date: date
    approved_at: datetime


class LetterAccepted(CrossCountyRecord):
    """The asked county's leadership took the letter on."""

    event_type: ClassVar[str] = "xiezuo.collaboration.letter_accepted.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    decided_at: datetime


class LetterDeclined(CrossCountyRecord):
    """The asked county's leadership declined the letter, with a ground."""

    event_type: ClassVar[str] = "xiezuo.collaboration.letter_declined.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    ground: str = Field(min_length=1, max_length=1000)
    decided_at: datetime


class Attachment(BaseModel):
    """Metadata of one attachment of an answer (the file itself stays with the answerer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    media_type: str = Field(min_length=1, max_length=100)


class LetterAnswered(CrossCountyRecord):
    """The asked county's findings."""

    event_type: ClassVar[str] = "xiezuo.collaboration.letter_answered.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    findings: str = Field(min_length=1, max_length=4000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    answered_at: datetime


class AssistanceAnswered(IntegrationEvent):
    """Another county answered a letter asked from a case: for that case's history.

    Published inside the requesting county (zone key), after the answer was verified.
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.assistance_answered.v1"
    topic: ClassVar[str] = ANSWERS_TOPIC

    case_id: str
    letter_id: str
    answered_by_county: str
    kind: LetterKindName
    findings: str = Field(max_length=4000)
    attachments: int = Field(ge=0)
    answered_at: datetime

    def subject_id(self) -> str | None:
        """The case the answer belongs to."""
        return self.case_id


class LetterDueSoon(IntegrationEvent):
    """A letter this county must answer, or awaits, is due within two working days.

    Keyed like the rest of the topic: the asking side by its case's zone, the asked side (which
    has no case) under zone `*`.
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.letter_due_soon.v1"
    topic: ClassVar[str] = ANSWERS_TOPIC

    letter_id: str
    direction: Literal["outbound", "inbound"]
    counterpart_county: str
    kind: LetterKindName
    due_date: date

    def subject_id(self) -> str | None:
        """The letter."""
        return self.letter_id


class LetterOverdue(LetterDueSoon):
    """A letter's due date passed without an answer (a breach on the county's calendar)."""

    event_type: ClassVar[str] = "xiezuo.collaboration.letter_overdue.v1"


# Inside the asked county: collaboration asks its own staffing for a team for an accepted letter.
TEAMS_TOPIC = "xiezuo.collaboration.teams"


class AssistanceTeamRequested(IntegrationEvent):
    """The asked county accepted a letter: its staffing draws a team from its own pool.

    Published inside the asked county (zone `*`: the letter has no case there). Carries what
    the draw needs and nothing else: no question, fields, excerpt or asking county's case.
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.assistance_team_requested.v1"
    topic: ClassVar[str] = TEAMS_TOPIC

    zone_id: Literal["*"] = "*"
    letter_id: str = Field(min_length=1, max_length=64)
    # "joint": one county's share of a joint investigation (联合审查调查); `letter_id` is then
    # that county's draw key for the joint case.
    kind: LetterKindName | Literal["joint"]
    # The subject's township in the asked county, when its leadership named one (异地办案);
    # "" when unknown.
    subject_township_id: str = Field(default="", max_length=64)
    team_size: int = Field(ge=1, le=20)
    accepted_at: datetime

    def subject_id(self) -> str | None:
        """The letter."""
        return self.letter_id


class AssistanceLetterClosed(IntegrationEvent):
    """The asked county answered a letter: its staffing ends the letter team's workload."""

    event_type: ClassVar[str] = "xiezuo.collaboration.assistance_letter_closed.v1"
    topic: ClassVar[str] = TEAMS_TOPIC

    zone_id: Literal["*"] = "*"
    letter_id: str = Field(min_length=1, max_length=64)
    # "answered" for a letter; a joint case's share: "declined" or "closed".
    outcome: Literal["answered", "declined", "closed"]
    closed_at: datetime

    def subject_id(self) -> str | None:
        """The letter."""
        return self.letter_id


class JointCaseOpened(CrossCountyRecord):
    """`from_county`'s leadership opened a joint investigation (联合审查调查) with `county_id`.

    `letter_id` is the joint case id. Neither county's case id nor the subject's township
    crosses: each county keeps its own.
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.joint_case_opened.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    opened_at: datetime
    # What the two counties investigate together; an agreement of the network must cover it.
    # (Optional on the wire only for records from before kinds: the receiver refuses None.)
    kind: JointKindName | None = None
    # County id → people it puts in, within the joint-case rules' bounds.
    shares: dict[str, int] = Field(default_factory=dict, max_length=2)
    # Set when the city commission opened it (`from_county` is then the city): the other
    # county of the pair; "" when `from_county` opened it and is the partner.
    partner_county: str = Field(default="", max_length=64)


class JointCaseAccepted(CrossCountyRecord):
    """The partner county's leadership joined the joint case."""

    event_type: ClassVar[str] = "xiezuo.collaboration.joint_case_accepted.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    decided_at: datetime


class JointShareDrawn(CrossCountyRecord):
    """The sending county's share of a joint team, drawn from its own pool: person ids only."""

    event_type: ClassVar[str] = "xiezuo.collaboration.joint_share_drawn.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    person_ids: list[str] = Field(default_factory=list, max_length=20)
    drawn_at: datetime


class JointCaseDeclined(CrossCountyRecord):
    """The sending county's leadership declined to join the joint case, with a ground."""

    event_type: ClassVar[str] = "xiezuo.collaboration.joint_case_declined.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    ground: str = Field(min_length=1, max_length=1000)
    decided_at: datetime


class JointCaseClosed(CrossCountyRecord):
    """The sending county's leadership closed the joint case: both teams are released."""

    event_type: ClassVar[str] = "xiezuo.collaboration.joint_case_closed.v1"
    topic: ClassVar[str] = LETTERS_TOPIC

    outcome: JointOutcomeName
    closed_at: datetime


class JointCaseNoted(IntegrationEvent):
    """A step of a joint case, for this county's own case file's history (never crosses).

    Published inside one county (zone `*`: collaboration does not know the case's zone) and
    only when that county named its case: its own case id, the other county, both shares.
    """

    event_type: ClassVar[str] = "xiezuo.collaboration.joint_case_noted.v1"
    topic: ClassVar[str] = ANSWERS_TOPIC

    zone_id: Literal["*"] = "*"
    case_id: str = Field(min_length=1, max_length=64)
    joint_id: str = Field(min_length=1, max_length=64)
    step: Literal["opened", "joined", "team_drawn", "declined", "closed"]
    partner_county: str = Field(max_length=64)
    kind: JointKindName | None = None
    own_member_ids: list[str] = Field(default_factory=list, max_length=20)
    partner_member_ids: list[str] = Field(default_factory=list, max_length=20)
    outcome: JointOutcomeName | None = None
    ground: str = Field(default="", max_length=1000)
    at: datetime

    def subject_id(self) -> str | None:
        """The case the step belongs to."""
        return self.case_id
