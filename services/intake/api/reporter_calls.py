"""Calls made with a receipt code: status, messages, added information."""

from __future__ import annotations

from datetime import UTC, datetime

from xiezuo.intake.v1 import intake_pb2

from services.intake.api.convert import attachments_from
from services.intake.api.parts import Context, IntakeParts, ReceiptLocked
from services.intake.api.policy import authorize_channel_officer, authorize_receipt
from services.intake.domain.channels import check_attachments
from services.intake.domain.receipt import well_formed
from services.intake.store.exchange import INFORMATION, OFFICER, REPORTER
from services.intake.store.receipts import ReceiptClaim, ReceiptLockedOut, ReceiptUnknown
from services.intake.store.tables import ReportRow
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import offset_from_token, offset_token, page_size
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, NotFound
from services.runtime.grpc.timestamps import timestamp

MAX_BODY_CHARS = 20_000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_MESSAGES_QUERY = {"call": "ListReporterMessages"}
STATUS_TO_PROTO = {
    "received": intake_pb2.REPORT_STATUS_RECEIVED,
    "accepted": intake_pb2.REPORT_STATUS_ACCEPTED,
    "not_accepted": intake_pb2.REPORT_STATUS_NOT_ACCEPTED,
    "forwarded": intake_pb2.REPORT_STATUS_FORWARDED,
    "in_progress": intake_pb2.REPORT_STATUS_IN_PROGRESS,
    "concluded": intake_pb2.REPORT_STATUS_CONCLUDED,
}
AUTHOR_TO_PROTO = {
    "reporter": intake_pb2.MESSAGE_AUTHOR_REPORTER,
    "officer": intake_pb2.MESSAGE_AUTHOR_OFFICER,
    "system": intake_pb2.MESSAGE_AUTHOR_SYSTEM,
}


def _receipt_violations(receipt: intake_pb2.ReceiptCredentials, path: str) -> list[FieldViolation]:
    problems = []
    if not receipt.county_id:
        problems.append(FieldViolation(f"{path}.county_id", "is required"))
    if not receipt.receipt_code:
        problems.append(FieldViolation(f"{path}.receipt_code", "is required"))
    elif not well_formed(receipt.receipt_code):
        problems.append(FieldViolation(f"{path}.receipt_code", "must be 16 digits"))
    if not receipt.caller_ref:
        problems.append(FieldViolation(f"{path}.caller_ref", "is required"))
    elif len(receipt.caller_ref) > 128:
        problems.append(FieldViolation(f"{path}.caller_ref", "must be at most 128 characters"))
    return problems


def _body_violations(text: str, path: str) -> list[FieldViolation]:
    if not text.strip():
        return [FieldViolation(path, "is required")]
    if len(text) > MAX_BODY_CHARS:
        return [FieldViolation(path, f"must be at most {MAX_BODY_CHARS} characters")]
    return []


def _key_violations(key: str) -> list[FieldViolation]:
    if not key:
        return [FieldViolation("idempotency_key", "is required")]
    if len(key) > 128:
        return [FieldViolation("idempotency_key", "must be at most 128 characters")]
    return []


class ReporterCalls:
    """The reporter-facing half of the intake servicer."""

    _parts: IntakeParts

    async def _by_receipt(self, receipt: intake_pb2.ReceiptCredentials) -> ReportRow:
        principal = current_principal()
        authorize_receipt(principal, county_id=receipt.county_id)
        claim = ReceiptClaim(receipt.county_id, receipt.receipt_code, receipt.caller_ref)
        try:
            return await self._parts.receipts.find(
                claim, actor=principal.subject, now=datetime.now(UTC)
            )
        except ReceiptLockedOut as locked:
            raise ReceiptLocked(str(locked)) from None
        except ReceiptUnknown:
            raise NotFound("report for that receipt code") from None

    async def _by_access(
        self, access: intake_pb2.ReporterChannelAccess
    ) -> tuple[ReportRow, str, str]:
        """The report, who acts (reporter or officer) and the audit actor."""
        principal = current_principal()
        if access.WhichOneof("by") == "receipt":
            held = await self._by_receipt(access.receipt)
            return held, REPORTER, f"reporter-via:{principal.subject}"
        report = await self._parts.reports.get(access.report_id)
        if report is None:
            raise NotFound("report", access.report_id)
        authorize_channel_officer(
            principal,
            county_id=report.county_id,
            zone_id=report.zone_id,
            report_id=report.report_id,
        )
        return report, OFFICER, principal.subject

    async def GetReportStatus(
        self, request: intake_pb2.GetReportStatusRequest, context: Context
    ) -> intake_pb2.GetReportStatusResponse:
        """Only what may be told: status, note, received time, number of officer replies."""
        problems = _receipt_violations(request.receipt, "receipt")
        if problems:
            raise InvalidArgument(problems)
        report = await self._by_receipt(request.receipt)
        await self._parts.reports.record_read(
            report,
            actor=f"reporter-via:{current_principal().subject}",
            action="report.status_read",
            now=datetime.now(UTC),
        )
        replies = await self._parts.channel.count_from(report.report_id, OFFICER)
        return intake_pb2.GetReportStatusResponse(
            status=STATUS_TO_PROTO.get(report.status, intake_pb2.REPORT_STATUS_RECEIVED),
            status_note=report.status_note,
            received_at=timestamp(report.received_at),
            officer_message_count=replies,
        )

    async def SendReporterMessage(
        self, request: intake_pb2.SendReporterMessageRequest, context: Context
    ) -> intake_pb2.SendReporterMessageResponse:
        """A message from the reporter (receipt) or to the reporter (officer)."""
        problems = _access_violations(request.access)
        problems += _body_violations(request.body, "body") + _key_violations(
            request.idempotency_key
        )
        if problems:
            raise InvalidArgument(problems)
        report, author, actor = await self._by_access(request.access)
        message_id = await self._parts.channel.send(
            report,
            author=author,
            body=request.body,
            idempotency_key=request.idempotency_key,
            actor=actor,
            now=datetime.now(UTC),
        )
        return intake_pb2.SendReporterMessageResponse(message_id=message_id)

    async def ListReporterMessages(
        self, request: intake_pb2.ListReporterMessagesRequest, context: Context
    ) -> intake_pb2.ListReporterMessagesResponse:
        """The report's messages, oldest first, one page at a time."""
        problems = _access_violations(request.access)
        size = page_size(
            request.page_size, problems, maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
        )
        # The receipt code is a secret: the token is bound to the call, not to the access.
        after = offset_from_token(request.page_token, _MESSAGES_QUERY, problems)
        if problems:
            raise InvalidArgument(problems)
        report, _, actor = await self._by_access(request.access)
        messages = await self._parts.channel.read(
            report, after_seq=after, limit=size + 1, actor=actor, now=datetime.now(UTC)
        )
        page, more = messages[:size], len(messages) > size
        return intake_pb2.ListReporterMessagesResponse(
            messages=[
                intake_pb2.ReporterMessage(
                    message_id=m.message_id,
                    author=AUTHOR_TO_PROTO[m.author],
                    body=m.body,
                    sent_at=timestamp(m.sent_at),
                )
                for m in page
            ],
            next_page_token=offset_token(page[-1].seq, _MESSAGES_QUERY) if more else "",
        )

    async def AddInformation(
        self, request: intake_pb2.AddInformationRequest, context: Context
    ) -> intake_pb2.AddInformationResponse:
        """The reporter adds text and evidence to their report."""
        problems = _receipt_violations(request.receipt, "receipt")
        problems += _body_violations(request.content, "content")
        problems += _key_violations(request.idempotency_key)
        attachments = attachments_from(request.attachments)
        problems += [
            FieldViolation(f, d) for f, d in check_attachments(attachments, path="attachments")
        ]
        if problems:
            raise InvalidArgument(problems)
        report = await self._by_receipt(request.receipt)
        information_id = await self._parts.channel.send(
            report,
            author=REPORTER,
            body=request.content,
            idempotency_key=request.idempotency_key,
            actor=f"reporter-via:{current_principal().subject}",
            now=datetime.now(UTC),
            attachments=attachments,
            kind=INFORMATION,
        )
        return intake_pb2.AddInformationResponse(information_id=information_id)


def _access_violations(access: intake_pb2.ReporterChannelAccess) -> list[FieldViolation]:
    by = access.WhichOneof("by")
    if by is None:
        return [FieldViolation("access", "give either a receipt or a report_id")]
    if by == "receipt":
        return _receipt_violations(access.receipt, "access.receipt")
    return [] if access.report_id else [FieldViolation("access.report_id", "is required")]
