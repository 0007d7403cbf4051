"""gRPC face of intake."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.api.convert import submission_from
from services.intake.api.duplicate_calls import DuplicateCalls
from services.intake.api.officer_calls import OfficerCalls
from services.intake.api.parts import IntakeParts
from services.intake.api.policy import (
    SUBMITTERS,
    authorize_back_registration,
    authorize_submit,
    authorize_submit_county,
)
from services.intake.api.reporter_calls import STATUS_TO_PROTO, ReporterCalls
from services.intake.domain.report import Submission, check_submission
from services.intake.domain.routing import route
from services.intake.domain.taxonomy import Taxonomy
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from services.runtime.grpc.timestamps import timestamp
from services.working_calendar import CalendarNotCovered


class IntakeServicer(
    ReporterCalls, OfficerCalls, DuplicateCalls, intake_pb2_grpc.IntakeServiceServicer
):
    """Receives reports from every channel and keeps the reporter's side of them."""

    def __init__(self, parts: IntakeParts) -> None:
        self._parts = parts
        self._registry = parts.registry
        self._rule_book = parts.rule_book

    async def SubmitReport(
        self,
        request: intake_pb2.SubmitReportRequest,
        context: grpc.aio.ServicerContext[
            intake_pb2.SubmitReportRequest, intake_pb2.SubmitReportResponse
        ],
    ) -> intake_pb2.SubmitReportResponse:
        """Validate, authorise, then register the report and its clue in one transaction."""
        principal = current_principal()
        if principal.roles.isdisjoint(SUBMITTERS):
            raise PermissionDenied(f"{principal.subject} may not submit reports")
        submission = submission_from(request)
        now = self._parts.clock()
        taxonomy = self._taxonomy(submission, now)
        problems = check_submission(
            submission,
            now=now,
            taxonomy=taxonomy,
            today=self._rule_book.calendar.local_date(now),
        )
        if problems:
            raise InvalidArgument(
                [FieldViolation(field, description) for field, description in problems],
                "the report is incomplete or malformed; nothing was stored",
            )
        authorize_submit_county(principal, county_id=submission.county_id)
        submission = await self._routed(submission, now=now)
        authorize_submit(principal, county_id=submission.county_id, zone_id=submission.zone_id)
        # The time the caller gave, named in a refusal (received_at, else registered_at).
        given = "received_at" if request.HasField("received_at") else "registered_at"
        if submission.registered_at is not None:
            authorize_back_registration(
                principal,
                submission.registered_at,
                received_at=submission.received_at,
                now=now,
                window_days=self._parts.back_entry_days,
            )
            # Registered on paper then, so received by then too when no other time is given.
            submission = replace(submission, received_at=submission.received_on(now))
        try:
            registration = await self._registry.register(submission, actor=principal.subject)
        except CalendarNotCovered as uncovered:
            # A working-day limit reached a year the county's calendar does not list: the
            # limit is not guessed, and nothing was stored (the limits are set before writing).
            if submission.received_at is None and submission.registered_at is None:
                raise FailedPrecondition(str(uncovered)) from None
            raise InvalidArgument(
                [FieldViolation(given, str(uncovered))],
                "the report's working-day limits cannot be counted; nothing was stored",
            ) from None
        if registration.replayed:
            # A reused key must not hand out a report the caller could not see, nor pass off
            # a different report as already registered.
            authorize_submit(
                principal, county_id=submission.county_id, zone_id=registration.zone_id
            )
            if registration.conflicting:
                raise FailedPrecondition(
                    "idempotency_key was already used for a different report; use a new key"
                )
        return intake_pb2.SubmitReportResponse(
            report_id=registration.report_id,
            clue_id=registration.clue_id,
            receipt_code=registration.receipt_code,
            registered_at=timestamp(registration.registered_at),
            linked=registration.linked,
            status=STATUS_TO_PROTO.get(registration.status, intake_pb2.REPORT_STATUS_RECEIVED),
            zone_id=registration.zone_id,
        )

    def _taxonomy(self, submission: Submission, now: datetime) -> Taxonomy:
        """The allegation taxonomy in force when the report was received."""
        try:
            return self._rule_book.taxonomy_at(submission.received_on(now))
        except LookupError:
            given = "received_at" if submission.received_at is not None else "registered_at"
            if submission.received_on(now) is now:
                raise  # no taxonomy today is a broken rule book, not a bad request
            raise InvalidArgument(
                [FieldViolation(given, "lies before any allegation taxonomy was in force")],
                "the report is incomplete or malformed; nothing was stored",
            ) from None

    async def _routed(self, submission: Submission, *, now: datetime) -> Submission:
        """The submission with the zone its township is placed in (registry copy)."""
        # The placement in force on the county's date of receipt.
        received_on = self._rule_book.calendar.local_date(submission.received_on(now))
        placed = await self._parts.townships.zone_of(
            submission.county_id, submission.township_id, on=received_on
        )
        zone, problem = route(
            township_id=submission.township_id,
            requested_zone=submission.zone_id,
            placed_zone=placed,
        )
        if problem:
            raise InvalidArgument(
                [FieldViolation("zone_id", problem)], "the report cannot be routed; nothing stored"
            )
        return replace(submission, zone_id=zone)
