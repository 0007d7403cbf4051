"""Translation between intake's gRPC messages and its domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.intake.v1 import intake_pb2

from services.intake.domain.channels import Attachment, ChannelDetails
from services.intake.domain.report import (
    CadreLevel,
    Channel,
    ReporterIdentity,
    Subject,
    Submission,
)
from services.runtime.grpc.conversion import moment_or_violation
from services.runtime.grpc.errors import FieldViolation

_CHANNELS = {
    intake_pb2.REPORT_CHANNEL_LETTER: Channel.LETTER,
    intake_pb2.REPORT_CHANNEL_VISIT: Channel.VISIT,
    intake_pb2.REPORT_CHANNEL_PHONE: Channel.PHONE,
    intake_pb2.REPORT_CHANNEL_ONLINE: Channel.ONLINE,
    intake_pb2.REPORT_CHANNEL_VILLAGE_INFORMANT: Channel.VILLAGE_INFORMANT,
    intake_pb2.REPORT_CHANNEL_DAILY_SUPERVISION: Channel.DAILY_SUPERVISION,
    intake_pb2.REPORT_CHANNEL_SPECIAL_CAMPAIGN: Channel.SPECIAL_CAMPAIGN,
    intake_pb2.REPORT_CHANNEL_INSPECTION_TOUR: Channel.INSPECTION_TOUR,
    intake_pb2.REPORT_CHANNEL_FORWARDED: Channel.FORWARDED,
}
_LEVELS = {
    intake_pb2.CADRE_LEVEL_UNSPECIFIED: CadreLevel.UNKNOWN,
    intake_pb2.CADRE_LEVEL_VILLAGE: CadreLevel.VILLAGE,
    intake_pb2.CADRE_LEVEL_TOWNSHIP: CadreLevel.TOWNSHIP,
    intake_pb2.CADRE_LEVEL_COUNTY_SECTION: CadreLevel.COUNTY_SECTION,
    intake_pb2.CADRE_LEVEL_COUNTY_DIVISION: CadreLevel.COUNTY_DIVISION,
    intake_pb2.CADRE_LEVEL_OTHER_PUBLIC_EMPLOYEE: CadreLevel.OTHER_PUBLIC_EMPLOYEE,
}


def submission_from(request: intake_pb2.SubmitReportRequest) -> Submission:
    """Read a request into a Submission; unknown enum values become violations."""
    violations: list[tuple[str, str]] = []
    channel = _CHANNELS.get(request.channel)
    if channel is None and request.channel != intake_pb2.REPORT_CHANNEL_UNSPECIFIED:
        violations.append(("channel", f"unknown channel value {request.channel}"))
    subject = None
    if request.HasField("subject"):
        level = _LEVELS.get(request.subject.cadre_level)
        if level is None:
            violations.append(
                ("subject.cadre_level", f"unknown level value {request.subject.cadre_level}")
            )
        subject = Subject(
            name=request.subject.name,
            post=request.subject.post,
            unit=request.subject.unit,
            township_id=request.subject.township_id,
            village=request.subject.village,
            cadre_level=level or CadreLevel.UNKNOWN,
        )
    reporter = None
    if request.HasField("reporter"):
        reporter = ReporterIdentity(
            full_name=request.reporter.full_name,
            id_number=request.reporter.id_number,
            phone=request.reporter.phone,
            address=request.reporter.address,
        )
    received_at = None
    if request.HasField("received_at"):
        received_at = _moment(request.received_at, "received_at", violations)
    return Submission(
        idempotency_key=request.idempotency_key,
        county_id=request.county_id,
        zone_id=request.zone_id,
        township_id=request.township_id,
        channel=channel,
        subject=subject,
        allegation_categories=tuple(request.allegation_categories),
        content=request.content,
        reporter=reporter,
        campaign_id=request.campaign_id if request.HasField("campaign_id") else None,
        received_at=received_at,
        violations=violations,
        channel_details=channel_details_from(request),
        attachments=attachments_from(request.attachments),
        registered_at=_moment(request.registered_at, "registered_at", violations)
        if request.HasField("registered_at")
        else None,
    )


def _moment(stamp: Timestamp, field: str, violations: list[tuple[str, str]]) -> datetime | None:
    """stamp as a UTC datetime, or None after recording why it is not a valid Timestamp."""
    refused: list[FieldViolation] = []
    converted = moment_or_violation(stamp, field, refused)
    violations.extend((v.field, v.description) for v in refused)
    return converted


def channel_details_from(request: intake_pb2.SubmitReportRequest) -> ChannelDetails | None:
    """The oneof member that was sent, with its values as text (times as ISO 8601)."""
    member = request.WhichOneof("channel_details")
    if member is None:
        return None
    message = getattr(request, member)
    values: dict[str, str] = {}
    for descriptor, value in message.ListFields():
        if isinstance(value, Timestamp):
            at = moment_or_violation(value, f"{member}.{descriptor.name}", [])
            values[descriptor.name] = "" if at is None else at.isoformat()
        else:
            values[descriptor.name] = str(value)
    return ChannelDetails(member=member, values=values)


def attachments_from(
    attachments: Iterable[intake_pb2.AttachmentMetadata],
) -> tuple[Attachment, ...]:
    """Attachment metadata as domain values."""
    return tuple(
        Attachment(sha256=a.sha256, size_bytes=a.size_bytes, media_type=a.media_type)
        for a in attachments
    )
