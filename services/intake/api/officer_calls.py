"""Calls of the commission's staff: acceptance decisions and identity reveals."""

from __future__ import annotations

from datetime import UTC, datetime

from xiezuo.intake.v1 import intake_pb2

from services.intake.api.parts import Context, IntakeParts
from services.intake.api.policy import (
    authorize_acceptance,
    authorize_back_dated_decision,
    authorize_result_feedback,
    authorize_reveal_decision,
    authorize_reveal_read,
    authorize_reveal_request,
)
from services.intake.api.reporter_calls import STATUS_TO_PROTO
from services.intake.domain.reveal import RevealRefused
from services.intake.domain.status import AcceptanceOutcome, check_acceptance
from services.intake.store.acceptance import AcceptanceDecision, AlreadyDecided
from services.intake.store.result_feedback import NotConcluded, ResultAlreadyTold
from services.intake.store.reveals import NoIdentity
from services.intake.store.tables import ReportRow
from services.runtime.db import as_utc
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import enum_number, moment
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.grpc.timestamps import timestamp

MAX_REASON_CHARS = 2_000
_OUTCOMES = {
    intake_pb2.ACCEPTANCE_OUTCOME_ACCEPT: AcceptanceOutcome.ACCEPT,
    intake_pb2.ACCEPTANCE_OUTCOME_NOT_ACCEPT: AcceptanceOutcome.NOT_ACCEPT,
    intake_pb2.ACCEPTANCE_OUTCOME_FORWARD: AcceptanceOutcome.FORWARD,
}
_GROUNDS = {
    intake_pb2.REJECTION_GROUND_COURT_MATTER: "court_matter",
    intake_pb2.REJECTION_GROUND_OTHER_AGENCY: "other_agency",
    intake_pb2.REJECTION_GROUND_NO_SUBSTANCE: "no_substance",
}


def _required(value: str, path: str, limit: int = MAX_REASON_CHARS) -> list[FieldViolation]:
    if not value.strip():
        return [FieldViolation(path, "is required")]
    if len(value) > limit:
        return [FieldViolation(path, f"must be at most {limit} characters")]
    return []


def _effective_at(
    request: intake_pb2.DecideAcceptanceRequest | intake_pb2.RecordResultFeedbackRequest,
) -> datetime | None:
    """The back-entered moment a request names, if any."""
    if not request.HasField("effective_at"):
        return None
    return moment(request.effective_at, "effective_at")


class OfficerCalls:
    """The staff-facing half of the intake servicer."""

    _parts: IntakeParts

    async def _report(self, report_id: str) -> ReportRow:
        report = await self._parts.reports.get(report_id)
        if report is None:
            raise NotFound("report", report_id)
        return report

    async def DecideAcceptance(
        self, request: intake_pb2.DecideAcceptanceRequest, context: Context
    ) -> intake_pb2.DecideAcceptanceResponse:
        """Accept, refuse with a reason, or forward; the reporter is told through the receipt."""
        problems = _required(request.report_id, "report_id", 64)
        problems += _required(request.idempotency_key, "idempotency_key", 128)
        outcome = _OUTCOMES.get(request.outcome)
        # An undefined ground must not pass for "no ground" (proto3 enums are open).
        enum_number(
            intake_pb2.RejectionGround.values(),
            request.rejection_ground,
            "rejection_ground",
            problems,
        )
        ground = _GROUNDS.get(request.rejection_ground, "")
        if outcome is None:
            problems.append(FieldViolation("outcome", "is required"))
        else:
            problems += [
                FieldViolation(f, d)
                for f, d in check_acceptance(
                    outcome=outcome,
                    ground=ground,
                    reason=request.reason,
                    forward_to=request.forward_to_body,
                )
            ]
        if problems:
            raise InvalidArgument(problems)
        assert outcome is not None
        principal = current_principal()
        report = await self._report(request.report_id)
        authorize_acceptance(
            principal,
            county_id=report.county_id,
            zone_id=report.zone_id,
            report_id=report.report_id,
        )
        now = datetime.now(UTC)
        effective_at = _effective_at(request)
        if effective_at is not None:
            authorize_back_dated_decision(
                principal,
                effective_at,
                not_before=as_utc(report.registered_at),
                not_before_what="the report's registration",
                now=now,
                window_days=self._parts.back_entry_days,
            )
        decision = AcceptanceDecision(
            outcome=outcome,
            ground=ground,
            reason=request.reason,
            forward_to_body=request.forward_to_body,
        )
        try:
            status = await self._parts.acceptance.decide(
                report.report_id,
                decision,
                actor=principal.subject,
                now=now,
                effective_at=effective_at,
            )
        except AlreadyDecided as decided:
            raise FailedPrecondition(str(decided)) from None
        return intake_pb2.DecideAcceptanceResponse(status=STATUS_TO_PROTO[status.value])

    async def RecordResultFeedback(
        self, request: intake_pb2.RecordResultFeedbackRequest, context: Context
    ) -> intake_pb2.RecordResultFeedbackResponse:
        """Tell the reporter the result of a concluded report, once per key."""
        problems = _required(request.report_id, "report_id", 64)
        problems += _required(request.idempotency_key, "idempotency_key", 128)
        problems += _required(request.channel_note, "channel_note")
        if problems:
            raise InvalidArgument(problems, "the result feedback is incomplete; nothing stored")
        principal = current_principal()
        report = await self._report(request.report_id)
        authorize_result_feedback(
            principal,
            county_id=report.county_id,
            zone_id=report.zone_id,
            report_id=report.report_id,
        )
        results = self._parts.results
        if results is None:
            raise FailedPrecondition("result feedback is not available on this server")
        now = datetime.now(UTC)
        effective_at = _effective_at(request)
        if effective_at is not None:
            # A report linked after its clue concluded was registered after the conclusion.
            concluded = max(
                as_utc(moment)
                for moment in (report.concluded_at, report.registered_at)
                if moment is not None
            )
            authorize_back_dated_decision(
                principal,
                effective_at,
                not_before=concluded,
                not_before_what="the conclusion of the report's handling",
                now=now,
                window_days=self._parts.back_entry_days,
            )
        try:
            told = await results.record(
                report.report_id,
                note=request.channel_note,
                idempotency_key=request.idempotency_key,
                actor=principal.subject,
                now=now,
                effective_at=effective_at,
            )
        except (NotConcluded, ResultAlreadyTold) as refused:
            raise FailedPrecondition(str(refused)) from None
        return intake_pb2.RecordResultFeedbackResponse(
            result_given_at=timestamp(told.given_at), within_limit=told.within_limit
        )

    async def RequestIdentityReveal(
        self, request: intake_pb2.RequestIdentityRevealRequest, context: Context
    ) -> intake_pb2.RequestIdentityRevealResponse:
        """A case officer files a reasoned request to read the reporter's identity."""
        problems = _required(request.report_id, "report_id", 64)
        problems += _required(request.reason, "reason")
        problems += _required(request.idempotency_key, "idempotency_key", 128)
        if problems:
            raise InvalidArgument(problems)
        principal = current_principal()
        report = await self._report(request.report_id)
        authorize_reveal_request(
            principal,
            county_id=report.county_id,
            zone_id=report.zone_id,
            report_id=report.report_id,
        )
        try:
            request_id = await self._parts.reveals.file(
                report,
                officer=principal.subject,
                reason=request.reason,
                idempotency_key=request.idempotency_key,
                now=datetime.now(UTC),
            )
        except NoIdentity:
            raise FailedPrecondition("the report is anonymous; there is no identity") from None
        return intake_pb2.RequestIdentityRevealResponse(reveal_request_id=request_id)

    async def DecideIdentityReveal(
        self, request: intake_pb2.DecideIdentityRevealRequest, context: Context
    ) -> intake_pb2.DecideIdentityRevealResponse:
        """A custodian (not the requester) approves or refuses."""
        problems = _required(request.reveal_request_id, "reveal_request_id", 64)
        problems += _required(request.reason, "reason")
        problems += _required(request.idempotency_key, "idempotency_key", 128)
        approve = {
            intake_pb2.REVEAL_DECISION_APPROVE: True,
            intake_pb2.REVEAL_DECISION_REFUSE: False,
        }.get(request.decision)
        if approve is None:
            problems.append(FieldViolation("decision", "is required"))
        if problems:
            raise InvalidArgument(problems)
        assert approve is not None
        principal = current_principal()
        scope = await self._parts.reveals.scope(request.reveal_request_id)
        if scope is None or not principal.can_see_county(scope.county_id):
            raise NotFound("reveal request", request.reveal_request_id)
        authorize_reveal_decision(
            principal, county_id=scope.county_id, requested_by=scope.requested_by
        )
        try:
            await self._parts.reveals.decide(
                scope.reveal_request_id,
                custodian=principal.subject,
                approve=approve,
                reason=request.reason,
                now=datetime.now(UTC),
            )
        except RevealRefused as refused:
            raise FailedPrecondition(str(refused)) from None
        return intake_pb2.DecideIdentityRevealResponse(reveal_request_id=scope.reveal_request_id)

    async def RevealIdentity(
        self, request: intake_pb2.RevealIdentityRequest, context: Context
    ) -> intake_pb2.RevealIdentityResponse:
        """The requester reads the identity once per approval; everything else is denied."""
        problems = _required(request.reveal_request_id, "reveal_request_id", 64)
        if problems:
            raise InvalidArgument(problems)
        principal = current_principal()
        scope = await self._parts.reveals.scope(request.reveal_request_id)
        if scope is None or not principal.can_see_county(scope.county_id):
            raise NotFound("reveal request", request.reveal_request_id)
        authorize_reveal_read(
            principal,
            county_id=scope.county_id,
            zone_id=scope.zone_id,
            requested_by=scope.requested_by,
        )
        try:
            identity = await self._parts.reveals.reveal(
                scope.reveal_request_id, reader=principal.subject, now=datetime.now(UTC)
            )
        except RevealRefused as refused:
            raise PermissionDenied(str(refused)) from None
        return intake_pb2.RevealIdentityResponse(
            reporter=intake_pb2.ReporterIdentity(
                full_name=identity.full_name,
                id_number=identity.id_number,
                phone=identity.phone,
                address=identity.address,
            )
        )
