"""gRPC face of cases: clues, case files and rectification items."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cases.api.commands import command_of, digest_of
from services.cases.api.links import LinkApi
from services.cases.api.messages import case_response, case_summary, clue_message, step_message
from services.cases.api.policy import (
    CASE_SUBJECT,
    authorize_case,
    authorize_read_clue,
    authorize_subject,
    case_list_scope,
    readable_zones,
)
from services.cases.api.rectification import RectificationApi
from services.cases.domain.casefile import (
    Actor,
    BadCommand,
    CaseFile,
    Forbidden,
    NotNow,
    open_actions,
    open_approvals,
)
from services.cases.store.case_reader import CaseFilter, CaseReader, CaseView, Keep
from services.cases.store.clues import ClueReader
from services.cases.store.tables import CaseFileRow
from services.cases.store.workflow import CaseMissing, KeyReused, OutOfOrder, Workflow
from services.runtime.backentry import check_back_entry
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import moment, page_size
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.grpc.paging import decode_page_token as decode_token
from services.runtime.grpc.paging import encode_page_token as encode_token
from services.runtime.tokens import Principal

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _page_size_violations(size: int) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    page_size(size, violations, maximum=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
    return violations


def _case_authorizer(
    principal: Principal, action: str = ""
) -> Callable[[CaseFileRow, CaseFile], None]:
    if CASE_SUBJECT in principal.roles:

        def authorize_own(row: CaseFileRow, file: CaseFile) -> None:
            authorize_subject(
                principal,
                county_id=row.county_id,
                subject_key=row.subject_key,
                case_id=row.case_id,
                action=action,
            )

        return authorize_own

    def authorize(row: CaseFileRow, file: CaseFile) -> None:
        authorize_case(principal, county_id=row.county_id, zone_id=row.zone_id, file=file)

    return authorize


class CaseServicer(LinkApi, RectificationApi, cases_pb2_grpc.CaseServiceServicer):
    """Clues, cases and rectification items, read and worked by the commission's staff."""

    def __init__(
        self,
        clues: ClueReader,
        cases: CaseReader,
        workflow: Workflow,
        *,
        back_entry_days: int = 0,
        **rest: Any,
    ):
        super().__init__(**rest)
        self._clues = clues
        self._cases = cases
        self._workflow = workflow
        self._back_entry_days = back_entry_days

    async def GetClue(
        self, request: cases_pb2.GetClueRequest, context: Context
    ) -> cases_pb2.GetClueResponse:
        """One clue, if the caller's scope covers it."""
        if not request.clue_id:
            raise InvalidArgument([FieldViolation("clue_id", "is required")])
        principal = current_principal()
        view = await self._clues.get(request.clue_id, actor=principal.subject)
        if view is None:
            raise NotFound("clue", request.clue_id)
        row = view.row
        authorize_read_clue(
            principal,
            county_id=row.county_id,
            zone_id=row.zone_id,
            clue_id=row.clue_id,
            recused=view.recused,
        )
        return cases_pb2.GetClueResponse(clue=clue_message(view))

    async def ListClues(
        self, request: cases_pb2.ListCluesRequest, context: Context
    ) -> cases_pb2.ListCluesResponse:
        """A page of the county's clues in id order."""
        violations = _page_size_violations(request.page_size)
        if not request.county_id:
            violations.append(FieldViolation("county_id", "is required"))
        query = {"county": request.county_id, "zone": request.zone_id}
        after = ""
        if request.page_token:
            try:
                after = decode_token(request.page_token, query)
            except ValueError as exc:
                violations.append(FieldViolation("page_token", str(exc)))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones = readable_zones(principal, county_id=request.county_id, zone_id=request.zone_id)
        limit = request.page_size or DEFAULT_PAGE_SIZE
        views = await self._clues.page(
            county_id=request.county_id,
            zone_ids=zones,
            after=after,
            limit=limit + 1,
            actor=principal.subject,
        )
        next_token = ""
        if len(views) > limit:
            views = views[:limit]
            next_token = encode_token(views[-1].row.clue_id, query)
        return cases_pb2.ListCluesResponse(
            clues=[clue_message(view) for view in views], next_page_token=next_token
        )

    async def ActOnCase(
        self, request: cases_pb2.ActOnCaseRequest, context: Context
    ) -> cases_pb2.ActOnCaseResponse:
        """One workflow step, applied once per idempotency key."""
        command = command_of(request)
        principal = current_principal()
        effective_at = None
        if request.HasField("effective_at"):
            effective_at = moment(request.effective_at, "effective_at")
            check_back_entry(
                principal,
                effective_at,
                now=datetime.now(UTC),
                window_days=self._back_entry_days,
            )
        try:
            result = await self._workflow.act(
                county_id=principal.county_id,
                case_id=request.case_id,
                idempotency_key=request.idempotency_key,
                digest=digest_of(request, principal.subject),
                command=command,
                actor=Actor(principal.subject, principal.roles),
                authorize=_case_authorizer(principal, request.action),
                effective_at=effective_at,
            )
        except CaseMissing as missing:
            raise NotFound("case", request.case_id) from missing
        except OutOfOrder as early:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "effective_at",
                        f"must not be before the file's last step ({early.last.isoformat()})",
                    )
                ]
            ) from early
        except KeyReused as reused:
            raise InvalidArgument(
                [FieldViolation("idempotency_key", "was used for a different command")]
            ) from reused
        except BadCommand as bad:
            raise InvalidArgument([FieldViolation(bad.field or "action", bad.reason)]) from bad
        except Forbidden as forbidden:
            raise PermissionDenied(forbidden.reason) from forbidden
        except NotNow as not_now:
            raise FailedPrecondition(not_now.reason) from not_now
        assert result.step is not None
        response = cases_pb2.ActOnCaseResponse(
            step=step_message(result.step), replayed=result.replayed
        )
        own_appeal = CASE_SUBJECT in principal.roles
        if result.row is not None and result.file is not None and not own_appeal:
            response.case.CopyFrom(case_summary(CaseView(result.row, result.file, overdue=False)))
        return response

    async def GetCase(
        self, request: cases_pb2.GetCaseRequest, context: Context
    ) -> cases_pb2.GetCaseResponse:
        """One case file with its full history, if the visibility policy allows it."""
        if not request.case_id:
            raise InvalidArgument([FieldViolation("case_id", "is required")])
        principal = current_principal()
        record = await self._cases.get(
            request.case_id, actor=principal.subject, authorize=_case_authorizer(principal)
        )
        if record is None:
            raise NotFound("case", request.case_id)
        response = case_response(record)
        rules = self._workflow.rules(record.view.row.rule_version)
        if rules is not None and CASE_SUBJECT not in principal.roles:
            actor = Actor(principal.subject, principal.roles)
            response.open_actions.extend(open_actions(record.view.file, actor, rules))
            response.case.caller_approvals.extend(open_approvals(record.view.file, actor, rules))
        return response

    async def ListCases(
        self, request: cases_pb2.ListCasesRequest, context: Context
    ) -> cases_pb2.ListCasesResponse:
        """A filtered page of the case files the caller may see, in id order."""
        violations = _page_size_violations(request.page_size)
        if not request.county_id:
            violations.append(FieldViolation("county_id", "is required"))
        query: dict[str, object] = {
            "county": request.county_id,
            "zone": request.zone_id,
            "township": request.township_id,
            "stage": request.stage,
            "overdue": request.overdue_only,
            "category": request.category,
            "assignee": request.assignee,
        }
        # Newer filters only when set, so page tokens issued before they existed stay valid.
        if request.at_risk_only:
            query["at_risk"] = True
        if request.awaiting_caller_approval:
            query["awaiting_caller"] = True
        after = ""
        if request.page_token:
            try:
                after = decode_token(request.page_token, query)
            except ValueError as exc:
                violations.append(FieldViolation("page_token", str(exc)))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        scope = case_list_scope(principal, county_id=request.county_id)
        keep: Keep | None = None
        stages: frozenset[str] | None = None
        if request.awaiting_caller_approval:
            if CASE_SUBJECT in principal.roles:
                # A reported person approves nothing: no file awaits them.
                return cases_pb2.ListCasesResponse()
            keep = self._awaits(principal)
            stages = self._workflow.approval_stages()
        limit = request.page_size or DEFAULT_PAGE_SIZE
        views = await self._cases.page(
            CaseFilter(
                county_id=scope.county_id,
                led_zones=scope.led_zones,
                person_id=scope.person_id,
                zone_id=request.zone_id,
                township_id=request.township_id,
                stage=request.stage,
                overdue_only=request.overdue_only,
                at_risk_only=request.at_risk_only,
                category=request.category,
                assignee=request.assignee,
                stages=stages,
            ),
            after=after,
            limit=limit + 1,
            actor=principal.subject,
            keep=keep,
        )
        next_token = ""
        if len(views) > limit:
            views = views[:limit]
            next_token = encode_token(views[-1].row.case_id, query)
        return cases_pb2.ListCasesResponse(
            cases=[self._summary_for(view, principal) for view in views],
            next_page_token=next_token,
        )

    async def CountCasesByStage(
        self, request: cases_pb2.CountCasesByStageRequest, context: Context
    ) -> cases_pb2.CountCasesByStageResponse:
        """How many of the files the caller may see stand in each stage, without listing them."""
        if not request.county_id:
            raise InvalidArgument([FieldViolation("county_id", "is required")])
        principal = current_principal()
        scope = case_list_scope(principal, county_id=request.county_id)
        tallies = await self._cases.count_by_stage(
            CaseFilter(
                county_id=scope.county_id,
                led_zones=scope.led_zones,
                person_id=scope.person_id,
                zone_id=request.zone_id,
                township_id=request.township_id,
                overdue_only=request.overdue_only,
                at_risk_only=request.at_risk_only,
                category=request.category,
                assignee=request.assignee,
            ),
            actor=principal.subject,
        )
        return cases_pb2.CountCasesByStageResponse(
            counts=[
                cases_pb2.StageCount(stage=t.stage, filed=t.filed, count=t.count) for t in tallies
            ],
            total=sum(t.count for t in tallies),
        )

    def _awaits(self, principal: Principal) -> Keep:
        """Whether the rule set awaits an approval from this caller on a file now."""
        actor = Actor(principal.subject, principal.roles)

        def awaits(row: CaseFileRow, file: CaseFile) -> bool:
            rules = self._workflow.rules(row.rule_version)
            return rules is not None and bool(open_approvals(file, actor, rules))

        return awaits

    def _summary_for(self, view: CaseView, principal: Principal) -> cases_pb2.CaseSummary:
        """A file's summary with the approvals it awaits from this caller."""
        summary = case_summary(view)
        rules = self._workflow.rules(view.row.rule_version)
        if rules is not None and CASE_SUBJECT not in principal.roles:
            actor = Actor(principal.subject, principal.roles)
            summary.caller_approvals.extend(open_approvals(view.file, actor, rules))
        return summary
