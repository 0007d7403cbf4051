"""What each channel must bring with a report, beyond what every report needs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.intake.domain.kinds import Channel
from services.working_calendar import DEFAULT_TIME_ZONE

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$")
MAX_ATTACHMENT_BYTES = 2 * 1024**3
MAX_ATTACHMENTS = 50
MAX_TEXT = 200

# The oneof member of each channel's details is named like the channel itself, so the field
# paths in violations (`visit.visit_date`) read the same as the request.
REQUIRED_DETAILS: dict[Channel, tuple[str, ...]] = {
    Channel.LETTER: (),
    Channel.ONLINE: (),
    Channel.VISIT: ("visit_date", "receiving_officer_id"),
    Channel.PHONE: ("called_at",),
    Channel.VILLAGE_INFORMANT: ("informant_id",),
    Channel.DAILY_SUPERVISION: ("supervision_record_id",),
    # The campaign reference is the request's own campaign_id (checked with the report).
    Channel.SPECIAL_CAMPAIGN: (),
    Channel.INSPECTION_TOUR: ("tour_id",),
    Channel.FORWARDED: ("forwarding_body", "forwarding_reference"),
}
_IDENTIFIERS = frozenset(
    {"receiving_officer_id", "informant_id", "supervision_record_id", "tour_id"}
)


@dataclass(frozen=True)
class ChannelDetails:
    """The channel-specific part of a report: which member was sent and its text values."""

    member: str
    values: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # An informant id identifies a reporter: keep it out of tracebacks.
        return f"ChannelDetails({self.member}, <sealed>)"


@dataclass(frozen=True)
class Attachment:
    """Metadata of one piece of evidence."""

    sha256: str
    size_bytes: int
    media_type: str


def check_channel_details(
    channel: Channel, details: ChannelDetails | None, *, now: datetime, today: date | None = None
) -> list[tuple[str, str]]:
    """Every rule the channel's details break, as (field path, what is wrong).

    `today` is the county's date at `now` (its calendar's clock); without it, Beijing's.
    """
    problems: list[tuple[str, str]] = []
    if details is not None and details.member != channel.value:
        problems.append(
            (
                details.member,
                f"does not belong to the {channel.value} channel; send {channel.value}",
            )
        )
        details = None
    values = details.values if details is not None else {}
    for name in REQUIRED_DETAILS[channel]:
        path = f"{channel.value}.{name}"
        value = values.get(name, "").strip()
        if not value:
            problems.append((path, f"is required for the {channel.value} channel"))
        elif name in _IDENTIFIERS and not _ID.match(value):
            problems.append((path, "must be 1-64 letters, digits, '_', '.', ':', '/' or '-'"))
        elif len(value) > MAX_TEXT:
            problems.append((path, f"must be at most {MAX_TEXT} characters"))
    if today is None:
        today = now.astimezone(ZoneInfo(DEFAULT_TIME_ZONE)).date()
    problems.extend(_check_moments(channel, values, now=now, today=today))
    return problems


def _check_moments(
    channel: Channel, values: dict[str, str], *, now: datetime, today: date
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if values.get("visit_date"):
        path = f"{channel.value}.visit_date"
        try:
            day = date.fromisoformat(values["visit_date"])
        except ValueError:
            problems.append((path, "must be a date as YYYY-MM-DD"))
        else:
            # A visit date is written on the county's clock: before 08:00 Beijing time the
            # UTC date is still yesterday, and today's visit would look like tomorrow's.
            if day > today:
                problems.append((path, "must not be in the future"))
    if values.get("called_at"):
        called_at = datetime.fromisoformat(values["called_at"])
        if called_at > now:
            problems.append((f"{channel.value}.called_at", "must not be in the future"))
    return problems


def check_attachments(attachments: tuple[Attachment, ...], *, path: str) -> list[tuple[str, str]]:
    """Metadata rules for evidence: a digest, a plausible size and a MIME type."""
    problems: list[tuple[str, str]] = []
    if len(attachments) > MAX_ATTACHMENTS:
        problems.append((path, f"at most {MAX_ATTACHMENTS} attachments"))
    for index, attachment in enumerate(attachments):
        where = f"{path}[{index}]"
        if not _SHA256.match(attachment.sha256):
            problems.append((f"{where}.sha256", "must be 64 lowercase hex digits"))
        if not 0 < attachment.size_bytes <= MAX_ATTACHMENT_BYTES:
            problems.append((f"{where}.size_bytes", f"must be 1..{MAX_ATTACHMENT_BYTES}"))
        if not _MEDIA_TYPE.match(attachment.media_type):
            problems.append((f"{where}.media_type", "must be a MIME type such as image/jpeg"))
    return problems
