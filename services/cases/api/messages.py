"""Rows and domain objects as gRPC messages."""

from __future__ import annotations

import json

from xiezuo.cases.v1 import cases_pb2

from services.cases.domain.clue import ClueStatus, clue_status
from services.cases.store.case_reader import CaseRecord, CaseView
from services.cases.store.clues import ClueView
from services.cases.store.tables import CaseStepRow, ClueLinkRow, DeadlineRow
from services.runtime.grpc.timestamps import timestamp

_CLUE_STATUSES = {
    ClueStatus.REGISTERED: cases_pb2.CLUE_STATUS_REGISTERED,
    ClueStatus.DISPOSAL_PROPOSED: cases_pb2.CLUE_STATUS_DISPOSAL_PROPOSED,
    ClueStatus.INQUIRY: cases_pb2.CLUE_STATUS_INQUIRY,
    ClueStatus.PRELIMINARY_VERIFICATION: cases_pb2.CLUE_STATUS_PRELIMINARY_VERIFICATION,
    ClueStatus.STORED_PENDING: cases_pb2.CLUE_STATUS_STORED_PENDING,
    ClueStatus.CLOSED: cases_pb2.CLUE_STATUS_CLOSED,
    ClueStatus.CASE_FILED: cases_pb2.CLUE_STATUS_CASE_FILED,
    ClueStatus.LINKED_DUPLICATE: cases_pb2.CLUE_STATUS_LINKED_DUPLICATE,
}


def clue_message(view: ClueView) -> cases_pb2.Clue:
    """A clue with the status its case file's stage implies."""
    row = view.row
    return cases_pb2.Clue(
        clue_id=row.clue_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        township_id=row.township_id,
        source_report_id=row.source_report_id,
        channel=row.channel,
        allegation_categories=json.loads(row.allegation_categories),
        status=_CLUE_STATUSES.get(
            clue_status(view.stage, duplicate=row.status == ClueStatus.LINKED_DUPLICATE),
            cases_pb2.CLUE_STATUS_UNSPECIFIED,
        ),
        registered_at=timestamp(row.registered_at),
        disposal_due_at=timestamp(row.disposal_due_at),
        rule_version=row.rule_version,
        stage=view.stage,
    )


def case_summary(view: CaseView) -> cases_pb2.CaseSummary:
    """A case file's current state."""
    row, file = view.row, view.file
    summary = cases_pb2.CaseSummary(
        case_id=row.case_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        township_id=row.township_id,
        stage=file.stage,
        rule_version=row.rule_version,
        categories=json.loads(row.categories),
        filed=file.filed,
        working_team=list(file.working_team),
        hearing_team=list(file.hearing_team),
        review_team=list(file.review_team),
        team_requested=file.team_requested,
        overdue=view.overdue,
        updated_at=timestamp(row.updated_at),
        township_ids=[row.township_id, *file.joint_townships],
        duplicate_of=file.duplicate_of,
    )
    if file.pending is not None:
        summary.pending.CopyFrom(
            cases_pb2.PendingProposal(
                kind=file.pending.kind,
                choice=file.pending.choice,
                next_approver=file.pending.next_approver,
            )
        )
    return summary


def step_message(step: CaseStepRow) -> cases_pb2.CaseStep:
    """One history entry."""
    return cases_pb2.CaseStep(
        step_id=step.id or 0,
        at=timestamp(step.at),
        actor=step.actor,
        action=step.action,
        from_stage=step.from_stage,
        to_stage=step.to_stage,
        event=step.event,
        reason=step.reason,
        detail_json=step.detail,
    )


def deadline_message(deadline: DeadlineRow) -> cases_pb2.CaseDeadline:
    """One deadline."""
    message = cases_pb2.CaseDeadline(
        deadline_id=deadline.deadline_id,
        kind=deadline.kind,
        due_at=timestamp(deadline.due_at),
        status=deadline.status,
    )
    if deadline.ended_at is not None:
        message.ended_at.CopyFrom(timestamp(deadline.ended_at))
    return message


def case_response(record: CaseRecord) -> cases_pb2.GetCaseResponse:
    """A case file with its deadlines and full history."""
    return cases_pb2.GetCaseResponse(
        case=case_summary(record.view),
        deadlines=[deadline_message(d) for d in record.deadlines],
        history=[step_message(s) for s in record.history],
        links=[link_message(link) for link in record.links],
    )


def link_message(link: ClueLinkRow) -> cases_pb2.ClueLink:
    """One link between clues."""
    return cases_pb2.ClueLink(
        kind=link.kind,
        clue_id=link.clue_id,
        other_clue_id=link.other_clue_id,
        report_id=link.report_id,
        linked_by=link.linked_by,
        reason=link.reason,
        at=timestamp(link.at),
    )
