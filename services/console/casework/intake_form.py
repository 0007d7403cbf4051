"""The report-intake form: which fields each channel asks for, and the SubmitReport it becomes.

The form only carries what the officer typed into the request; intake decides what is
required and answers INVALID_ARGUMENT with field violations, shown beside the inputs. A
reporter's identity typed here goes to intake only: never into a log, a URL or the page after.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from xiezuo.intake.v1 import intake_pb2

from services.console.casework.views import FormData, FormProblem

CHANNEL_PREFIX = "REPORT_CHANNEL_"
CADRE_PREFIX = "CADRE_LEVEL_"
# The inputs each channel adds to the common ones (SubmitReportRequest.channel_details).
CHANNEL_FIELDS: Mapping[str, tuple[str, ...]] = {
    "letter": (),
    "online": (),
    "visit": ("visit_date", "receiving_officer_id"),
    "phone": ("called_at", "line", "receiving_officer_id"),
    "village_informant": ("informant_id",),
    "daily_supervision": ("supervision_record_id",),
    "special_campaign": ("campaign_id",),
    "inspection_tour": ("tour_id", "handover_reference"),
    "forwarded": ("forwarding_body", "forwarding_reference"),
}
REPORTER_FIELDS = ("full_name", "id_number", "phone", "address")
CADRE_LEVELS = tuple(
    value.name.removeprefix(CADRE_PREFIX).lower()
    for value in intake_pb2.CadreLevel.DESCRIPTOR.values
    if not value.name.endswith("UNSPECIFIED")
)


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()


def _moment(form: FormData, name: str) -> datetime:
    raw = _text(form, name)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise FormProblem(name, "not_a_moment") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def report_request(
    form: FormData, *, county_id: str, idempotency_key: str
) -> intake_pb2.SubmitReportRequest:
    """The SubmitReport request a submitted intake form stands for."""
    channel = _text(form, "channel")
    if channel not in CHANNEL_FIELDS:
        raise FormProblem("channel", "unknown_channel")
    cadre = _text(form, "cadre_level")
    request = intake_pb2.SubmitReportRequest(
        idempotency_key=idempotency_key,
        county_id=county_id,
        township_id=_text(form, "township_id"),
        channel=intake_pb2.ReportChannel.Value(CHANNEL_PREFIX + channel.upper()),
        subject=intake_pb2.ReportedSubject(
            name=_text(form, "subject_name"),
            post=_text(form, "subject_post"),
            unit=_text(form, "subject_unit"),
            township_id=_text(form, "township_id"),
            village=_text(form, "subject_village"),
            cadre_level=(
                intake_pb2.CadreLevel.Value(CADRE_PREFIX + cadre.upper())
                if cadre in CADRE_LEVELS
                else intake_pb2.CADRE_LEVEL_UNSPECIFIED
            ),
        ),
        allegation_categories=[
            part.strip() for part in _text(form, "categories").split(",") if part.strip()
        ],
        content=_text(form, "content"),
    )
    if _text(form, "real_name"):
        request.reporter.CopyFrom(
            intake_pb2.ReporterIdentity(**{name: _text(form, name) for name in REPORTER_FIELDS})
        )
    if channel == "visit":
        request.visit.CopyFrom(
            intake_pb2.VisitDetails(
                visit_date=_text(form, "visit_date"),
                receiving_officer_id=_text(form, "receiving_officer_id"),
            )
        )
    elif channel == "phone":
        phone = intake_pb2.PhoneDetails(
            line=_text(form, "line"), receiving_officer_id=_text(form, "receiving_officer_id")
        )
        if _text(form, "called_at"):
            phone.called_at.FromDatetime(_moment(form, "called_at"))
        request.phone.CopyFrom(phone)
    elif channel == "village_informant":
        request.village_informant.CopyFrom(
            intake_pb2.VillageInformantDetails(informant_id=_text(form, "informant_id"))
        )
    elif channel == "daily_supervision":
        request.daily_supervision.CopyFrom(
            intake_pb2.SupervisionDetails(
                supervision_record_id=_text(form, "supervision_record_id")
            )
        )
    elif channel == "special_campaign":
        request.campaign_id = _text(form, "campaign_id")
    elif channel == "inspection_tour":
        request.inspection_tour.CopyFrom(
            intake_pb2.InspectionTourDetails(
                tour_id=_text(form, "tour_id"),
                handover_reference=_text(form, "handover_reference"),
            )
        )
    elif channel == "forwarded":
        request.forwarded.CopyFrom(
            intake_pb2.ForwardedDetails(
                forwarding_body=_text(form, "forwarding_body"),
                forwarding_reference=_text(form, "forwarding_reference"),
            )
        )
    return request


def intake_field(violation_field: str) -> str:
    """The form input an intake field violation belongs to (`subject.name` → `subject_name`)."""
    head = violation_field.split("[", 1)[0]
    if head.startswith("subject."):
        name = head.removeprefix("subject.")
        return "township_id" if name == "township_id" else f"subject_{name}"
    if head.startswith("reporter."):
        return head.removeprefix("reporter.")
    if head == "allegation_categories":
        return "categories"
    if "." in head:
        # visit.visit_date, phone.line, forwarded.forwarding_body, ...: the detail's own input.
        return head.split(".", 1)[1]
    return head or "channel"
