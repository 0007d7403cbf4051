"""The clue-link RPCs of CaseService: related clues and joint cases."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from xiezuo.cases.v1 import cases_pb2

from services.cases.api.messages import case_summary, step_message
from services.cases.api.policy import authorize_link
from services.cases.domain.casefile import BadCommand, CaseFile, Forbidden, NotNow
from services.cases.domain.links import check_related
from services.cases.store.case_reader import CaseView
from services.cases.store.links import AlreadyLinked, ClueLinks
from services.cases.store.tables import CaseFileRow
from services.cases.store.workflow import CaseMissing, KeyReused, StepResult
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.tokens import Principal

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
MAX_KEY_LENGTH = 128
MAX_REASON = 4000
MAX_TOWNSHIPS = 20


def _digest(request: Message, actor: str) -> str:
    """What a retry must repeat exactly: the same caller sending the same request."""
    body = request.SerializeToString(deterministic=True)
    return hashlib.sha256(actor.encode() + b"\x1f" + body).hexdigest()


def _common(request: Any) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if not request.idempotency_key:
        violations.append(FieldViolation("idempotency_key", "is required"))
    elif len(request.idempotency_key) > MAX_KEY_LENGTH:
        violations.append(FieldViolation("idempotency_key", f"at most {MAX_KEY_LENGTH} chars"))
    if not request.case_id:
        violations.append(FieldViolation("case_id", "is required"))
    if not request.reason.strip():
        violations.append(FieldViolation("reason", "is required"))
    elif len(request.reason) > MAX_REASON:
        violations.append(FieldViolation("reason", f"at most {MAX_REASON} chars"))
    return violations


def _authorizer(principal: Principal) -> Callable[[CaseFileRow, CaseFile], None]:
    def authorize(row: CaseFileRow, file: CaseFile) -> None:
        authorize_link(principal, county_id=row.county_id, zone_id=row.zone_id, file=file)

    return authorize


class LinkApi:
    """Link related clues; declare joint cases spanning townships."""

    def __init__(self, *, links: ClueLinks, **rest: Any) -> None:
        super().__init__(**rest)
        self._links = links

    async def LinkRelatedClues(
        self, request: cases_pb2.LinkRelatedCluesRequest, context: Context
    ) -> cases_pb2.LinkRelatedCluesResponse:
        """Link two clues as related, once per idempotency key."""
        violations = _common(request)
        if not violations:
            try:
                check_related(request.case_id, request.related_case_id, request.reason)
            except BadCommand as bad:
                violations.append(FieldViolation(bad.field, bad.reason))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        result = await _refusals(
            self._links.relate(
                county_id=principal.county_id,
                clue_id=request.case_id,
                other_clue_id=request.related_case_id,
                reason=request.reason.strip(),
                idempotency_key=request.idempotency_key,
                digest=_digest(request, principal.subject),
                actor=principal.subject,
                authorize=_authorizer(principal),
            )
        )
        response = cases_pb2.LinkRelatedCluesResponse(replayed=result.replayed)
        _fill(response, result)
        return response

    async def DeclareJointCase(
        self, request: cases_pb2.DeclareJointCaseRequest, context: Context
    ) -> cases_pb2.DeclareJointCaseResponse:
        """Make a case joint across further townships, once per idempotency key."""
        violations = _common(request)
        if not request.township_ids:
            violations.append(FieldViolation("township_ids", "name at least one township"))
        elif len(request.township_ids) > MAX_TOWNSHIPS:
            violations.append(FieldViolation("township_ids", f"at most {MAX_TOWNSHIPS}"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        result = await _refusals(
            self._links.declare_joint(
                county_id=principal.county_id,
                case_id=request.case_id,
                township_ids=list(request.township_ids),
                reason=request.reason.strip(),
                idempotency_key=request.idempotency_key,
                digest=_digest(request, principal.subject),
                actor=principal.subject,
                authorize=_authorizer(principal),
            )
        )
        response = cases_pb2.DeclareJointCaseResponse(replayed=result.replayed)
        _fill(response, result)
        return response


async def _refusals(command: Any) -> StepResult:
    """Await a link command, turning its refusals into gRPC errors."""
    try:
        result: StepResult = await command
    except CaseMissing as missing:
        raise NotFound("case", missing) from missing
    except KeyReused as reused:
        raise InvalidArgument(
            [FieldViolation("idempotency_key", "was used for a different command")]
        ) from reused
    except AlreadyLinked as linked:
        raise AlreadyExists(f"link {linked}") from linked
    except BadCommand as bad:
        raise InvalidArgument([FieldViolation(bad.field or "case_id", bad.reason)]) from bad
    except Forbidden as forbidden:
        raise PermissionDenied(forbidden.reason) from forbidden
    except NotNow as not_now:
        raise FailedPrecondition(not_now.reason) from not_now
    return result


def _fill(response: Any, result: StepResult) -> None:
    assert result.step is not None
    response.step.CopyFrom(step_message(result.step))
    if result.row is not None and result.file is not None:
        response.case.CopyFrom(case_summary(CaseView(result.row, result.file, overdue=False)))
