"""A report (信访举报) as intake receives it, and the rules a submission must meet."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from services.intake.domain.channels import (
    Attachment,
    ChannelDetails,
    check_attachments,
    check_channel_details,
)
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.taxonomy import Taxonomy

__all__ = ["CadreLevel", "Channel", "ReporterIdentity", "Subject", "Submission", "check_submission"]

MAX_CONTENT_CHARS = 20_000
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class Subject:
    """The official reported."""

    name: str
    post: str
    unit: str
    township_id: str
    village: str
    cadre_level: CadreLevel


@dataclass(frozen=True)
class ReporterIdentity:
    """Who reported; only ever held encrypted, never published or logged."""

    full_name: str
    id_number: str
    phone: str
    address: str

    def __repr__(self) -> str:
        # Keeps the identity out of tracebacks and debug output by accident.
        return "ReporterIdentity(<sealed>)"


@dataclass(frozen=True)
class Submission:
    """Everything a report brings in, before it is stored."""

    idempotency_key: str
    county_id: str
    zone_id: str
    township_id: str
    channel: Channel | None
    subject: Subject | None
    allegation_categories: tuple[str, ...]
    content: str
    reporter: ReporterIdentity | None
    campaign_id: str | None
    received_at: datetime | None = None
    violations: list[tuple[str, str]] = field(default_factory=list)
    channel_details: ChannelDetails | None = None
    attachments: tuple[Attachment, ...] = ()
    # Back-entry (补录) only: when the paper ledger registered it; None means at submission.
    registered_at: datetime | None = None

    def received_on(self, now: datetime) -> datetime:
        """When received: as given, else when back-entered as registered, else now."""
        return self.received_at or self.registered_at or now


def check_submission(
    submission: Submission,
    *,
    now: datetime,
    taxonomy: Taxonomy | None = None,
    today: date | None = None,
) -> list[tuple[str, str]]:
    """Every rule the submission breaks, as (field path, what is wrong); empty when valid.

    Without a taxonomy only the form of category codes is checked. `today` is the county's
    date at `now` (dates a caller writes, such as a visit's, are on that clock).
    """
    problems: list[tuple[str, str]] = list(submission.violations)
    for name in ("idempotency_key", "county_id", "zone_id", "township_id"):
        value = getattr(submission, name)
        if not value:
            # The zone may come from the registry copy instead (routing checks it then).
            if name != "zone_id":
                problems.append((name, "is required"))
        elif name != "idempotency_key" and not _ID.match(value):
            problems.append((name, "must be 1-64 letters, digits, '_', '.', ':' or '-'"))
    if submission.idempotency_key and len(submission.idempotency_key) > 128:
        problems.append(("idempotency_key", "must be at most 128 characters"))
    if submission.channel is None:
        problems.append(("channel", "is required"))
    subject = submission.subject
    if subject is None:
        problems.append(("subject", "is required"))
    else:
        for name in ("name", "post", "unit", "township_id"):
            if not getattr(subject, name).strip():
                problems.append((f"subject.{name}", "is required"))
    if not submission.allegation_categories:
        problems.append(("allegation_categories", "at least one category is required"))
    for index, code in enumerate(submission.allegation_categories):
        if not _CODE.match(code):
            problems.append(
                (f"allegation_categories[{index}]", "must be a lower_snake_case category code")
            )
    if taxonomy is not None:
        for index in taxonomy.unknown(submission.allegation_categories):
            problems.append(
                (
                    f"allegation_categories[{index}]",
                    f"is not a category of taxonomy {taxonomy.version}",
                )
            )
    if not submission.content.strip():
        problems.append(("content", "is required"))
    elif len(submission.content) > MAX_CONTENT_CHARS:
        problems.append(("content", f"must be at most {MAX_CONTENT_CHARS} characters"))
    if submission.channel is Channel.SPECIAL_CAMPAIGN and not submission.campaign_id:
        problems.append(("campaign_id", "is required for the special_campaign channel"))
    reporter = submission.reporter
    if reporter is not None:
        if not reporter.full_name.strip():
            problems.append(("reporter.full_name", "is required for a real-name report"))
        if not (reporter.phone.strip() or reporter.address.strip()):
            problems.append(("reporter.phone", "a real-name report needs a phone or an address"))
    if submission.channel is not None:
        problems.extend(
            check_channel_details(
                submission.channel, submission.channel_details, now=now, today=today
            )
        )
    problems.extend(check_attachments(submission.attachments, path="attachments"))
    if submission.received_at is not None and submission.received_at > now:
        problems.append(("received_at", "must not be in the future"))
    return problems


def fingerprint(submission: Submission) -> str:
    """A digest of what the request says, to tell a true retry from a reused idempotency key.

    The reporter's identity is left out on purpose: a hash of a name or ID number is guessable
    and would be identity by another name.
    """
    subject = submission.subject
    parts: dict[str, object] = {
        "county": submission.county_id,
        "zone": submission.zone_id,
        "township": submission.township_id,
        "channel": submission.channel.value if submission.channel else None,
        "subject": [
            subject.name,
            subject.post,
            subject.unit,
            subject.township_id,
            subject.village,
            subject.cadre_level.value,
        ]
        if subject
        else None,
        "categories": list(submission.allegation_categories),
        "content": submission.content,
        "real_name": submission.reporter is not None,
        "campaign": submission.campaign_id,
        # Informant ids identify a reporter; their presence is enough to tell retries apart.
        "details": _details_digest_part(submission.channel_details),
        "attachments": [[a.sha256, a.size_bytes, a.media_type] for a in submission.attachments],
    }
    # Only when given, so digests of ordinary submissions stay what they were.
    if submission.registered_at is not None:
        parts["registered_at"] = submission.registered_at.astimezone(UTC).isoformat()
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _details_digest_part(details: ChannelDetails | None) -> list[object] | None:
    if details is None:
        return None
    return [
        details.member,
        sorted((k, v) for k, v in details.values.items() if k != "informant_id"),
    ]
