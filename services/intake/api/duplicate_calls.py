"""Calls on near-duplicate reports: list the flags, link or keep separate."""

from __future__ import annotations

from datetime import UTC, datetime

from xiezuo.intake.v1 import intake_pb2

from services.intake.api.parts import Context, IntakeParts
from services.intake.api.policy import authorize_duplicate_decision, duplicate_zones
from services.intake.store.duplicates import KEPT_SEPARATE, LINKED, PENDING, CandidateDecided
from services.intake.store.tables import DuplicateCandidateRow
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import offset_from_token, offset_token, page_size
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.runtime.grpc.timestamps import timestamp

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_REASON_CHARS = 2_000
_STATES = {
    PENDING: intake_pb2.DUPLICATE_STATE_PENDING,
    LINKED: intake_pb2.DUPLICATE_STATE_LINKED,
    KEPT_SEPARATE: intake_pb2.DUPLICATE_STATE_KEPT_SEPARATE,
}
_DECISIONS = {
    intake_pb2.DUPLICATE_DECISION_LINK: True,
    intake_pb2.DUPLICATE_DECISION_KEEP_SEPARATE: False,
}


def candidate_message(row: DuplicateCandidateRow) -> intake_pb2.DuplicateCandidate:
    """The gRPC form of a flag."""
    return intake_pb2.DuplicateCandidate(
        candidate_id=row.candidate_id,
        report_id=row.report_id,
        clue_id=row.clue_id,
        similar_report_id=row.similar_report_id,
        similar_clue_id=row.similar_clue_id,
        reason=row.reason,
        flagged_at=timestamp(row.flagged_at),
        state=_STATES[row.state],
        zone_id=row.zone_id,
    )


class DuplicateCalls:
    """The near-duplicate half of the officer's calls."""

    _parts: IntakeParts

    async def ListDuplicateCandidates(
        self, request: intake_pb2.ListDuplicateCandidatesRequest, context: Context
    ) -> intake_pb2.ListDuplicateCandidatesResponse:
        """Flags of the caller's county and zones, oldest first; the read is audited."""
        problems = []
        if not request.county_id:
            problems.append(FieldViolation("county_id", "is required"))
        limit = page_size(
            request.page_size, problems, maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
        )
        query = {"county": request.county_id, "pending_only": request.pending_only}
        offset = offset_from_token(request.page_token, query, problems)
        if problems:
            raise InvalidArgument(problems)
        principal = current_principal()
        zones = duplicate_zones(principal, county_id=request.county_id)
        page = await self._parts.duplicates.list(
            county_id=request.county_id,
            zone_ids=zones,
            pending_only=request.pending_only,
            offset=offset,
            limit=limit,
            actor=principal.subject,
            now=datetime.now(UTC),
        )
        return intake_pb2.ListDuplicateCandidatesResponse(
            candidates=[candidate_message(row) for row in page.candidates],
            next_page_token=""
            if page.next_offset is None
            else offset_token(page.next_offset, query),
        )

    async def DecideDuplicate(
        self, request: intake_pb2.DecideDuplicateRequest, context: Context
    ) -> intake_pb2.DecideDuplicateResponse:
        """Link the report to the similar clue (ReportLinked) or keep it separate."""
        problems = []
        if not request.candidate_id:
            problems.append(FieldViolation("candidate_id", "is required"))
        link = _DECISIONS.get(request.decision)
        if link is None:
            problems.append(FieldViolation("decision", "is required"))
        if not request.reason.strip():
            problems.append(FieldViolation("reason", "is required"))
        elif len(request.reason) > MAX_REASON_CHARS:
            problems.append(FieldViolation("reason", f"must be at most {MAX_REASON_CHARS} chars"))
        if not request.idempotency_key:
            problems.append(FieldViolation("idempotency_key", "is required"))
        if problems:
            raise InvalidArgument(problems)
        assert link is not None
        principal = current_principal()
        found = await self._parts.duplicates.get(request.candidate_id)
        if found is None or not principal.can_see_county(found.county_id):
            raise NotFound("duplicate candidate", request.candidate_id)
        authorize_duplicate_decision(principal, county_id=found.county_id, zone_id=found.zone_id)
        try:
            row = await self._parts.duplicates.decide(
                found.candidate_id,
                link=link,
                reason=request.reason,
                actor=principal.subject,
                now=datetime.now(UTC),
            )
        except CandidateDecided as decided:
            raise FailedPrecondition(str(decided)) from None
        return intake_pb2.DecideDuplicateResponse(candidate=candidate_message(row))
