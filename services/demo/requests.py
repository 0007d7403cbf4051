"""A scripted report as intake's SubmitReportRequest (pure translation, no I/O)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.intake.v1 import intake_pb2

from services.demo.scenario import ScriptedReport

_CHANNELS = {
    "letter": intake_pb2.REPORT_CHANNEL_LETTER,
    "visit": intake_pb2.REPORT_CHANNEL_VISIT,
    "phone": intake_pb2.REPORT_CHANNEL_PHONE,
    "online": intake_pb2.REPORT_CHANNEL_ONLINE,
    "village_informant": intake_pb2.REPORT_CHANNEL_VILLAGE_INFORMANT,
    "daily_supervision": intake_pb2.REPORT_CHANNEL_DAILY_SUPERVISION,
    "special_campaign": intake_pb2.REPORT_CHANNEL_SPECIAL_CAMPAIGN,
    "inspection_tour": intake_pb2.REPORT_CHANNEL_INSPECTION_TOUR,
    "forwarded": intake_pb2.REPORT_CHANNEL_FORWARDED,
}
_LEVELS = {
    "village": intake_pb2.CADRE_LEVEL_VILLAGE,
    "township": intake_pb2.CADRE_LEVEL_TOWNSHIP,
    "county_section": intake_pb2.CADRE_LEVEL_COUNTY_SECTION,
    "county_division": intake_pb2.CADRE_LEVEL_COUNTY_DIVISION,
    "other_public_employee": intake_pb2.CADRE_LEVEL_OTHER_PUBLIC_EMPLOYEE,
}
# The oneof member of each channel's details is named like the channel (intake's convention).
_TIMESTAMP_FIELDS = frozenset({"called_at"})


def _timestamp(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromJsonString(text.replace("+00:00", "Z"))
    return stamp


def submit_request(report: ScriptedReport) -> intake_pb2.SubmitReportRequest:
    """The request the scenario sends for one report (zone given: it must match the registry)."""
    request = intake_pb2.SubmitReportRequest(
        idempotency_key=report.key,
        county_id=report.county_id,
        zone_id=report.zone_id,
        township_id=report.township_id,
        channel=_CHANNELS[report.channel],
        subject=intake_pb2.ReportedSubject(
            name=report.subject_name,
            post=report.subject_post,
            unit=report.subject_unit,
            township_id=report.township_id,
            village=report.village,
            cadre_level=_LEVELS[report.cadre_level],
        ),
        allegation_categories=list(report.categories),
        content=report.content,
        received_at=_timestamp(report.received_at.isoformat()),
        # The demo enters a year's paper ledger (补录): registered when it was, not today.
        registered_at=_timestamp(report.registered_at.isoformat()),
    )
    if report.real_name:
        # Scenario reporters are fictitious; the identity only exercises intake's sealed vault.
        request.reporter.CopyFrom(
            intake_pb2.ReporterIdentity(
                full_name=f"演示举报人{report.key[-5:]}", phone=f"1380000{report.key[-4:]}"
            )
        )
    if report.campaign_id is not None:
        request.campaign_id = report.campaign_id
    if report.details:
        member = getattr(request, report.channel)
        for name, value in report.details:
            if name in _TIMESTAMP_FIELDS:
                getattr(member, name).CopyFrom(_timestamp(value))
            else:
                setattr(member, name, value)
    return request
