"""Rows and records as gRPC messages, and request fields as domain values."""

from __future__ import annotations

import json
from datetime import date

from xiezuo.staffing.v1 import staffing_pb2

from services.runtime.grpc.paging import decode_page_token, encode_page_token
from services.runtime.grpc.timestamps import timestamp
from services.staffing.domain.conflicts import ConflictRelation, RecusalRaisedBy
from services.staffing.domain.draw import DrawRecord
from services.staffing.store.tables import DrawRow, PersonRow, PersonStatusRow

RELATIONS = {
    staffing_pb2.CONFLICT_RELATION_CLOSE_RELATIVE_OF_SUBJECT: (
        ConflictRelation.CLOSE_RELATIVE_OF_SUBJECT
    ),
    staffing_pb2.CONFLICT_RELATION_CLOSE_RELATIVE_OF_REPORTER: (
        ConflictRelation.CLOSE_RELATIVE_OF_REPORTER
    ),
    staffing_pb2.CONFLICT_RELATION_WITNESS: ConflictRelation.WITNESS,
    staffing_pb2.CONFLICT_RELATION_INTEREST_IN_MATTER: ConflictRelation.INTEREST_IN_MATTER,
    staffing_pb2.CONFLICT_RELATION_PRIOR_POSTING: ConflictRelation.PRIOR_POSTING,
    staffing_pb2.CONFLICT_RELATION_OTHER: ConflictRelation.OTHER,
}
RAISERS = {
    staffing_pb2.RECUSAL_RAISED_BY_STAFF_MEMBER: RecusalRaisedBy.STAFF_MEMBER,
    staffing_pb2.RECUSAL_RAISED_BY_SUBJECT: RecusalRaisedBy.SUBJECT,
    staffing_pb2.RECUSAL_RAISED_BY_REPORTER: RecusalRaisedBy.REPORTER,
}


def parse_day(text: str) -> date:
    """A YYYY-MM-DD date; ValueError otherwise."""
    return date.fromisoformat(text)


def person_message(
    row: PersonRow, statuses: list[PersonStatusRow], open_assignments: int = 0
) -> staffing_pb2.Person:
    """A person row as its message, with the open assignments they hold."""
    return staffing_pb2.Person(
        open_assignments=open_assignments,
        person_id=row.person_id,
        county_id=row.county_id,
        zone_id=row.zone_id or "",
        home_township_id=row.home_township_id or "",
        village_id=row.village_id or "",
        name=row.name,
        roles=json.loads(row.roles),
        skills=json.loads(row.skills),
        workload_cap=row.workload_cap,
        statuses=[
            staffing_pb2.StatusPeriod(
                status=status.status,
                start_date=status.start.isoformat(),
                end_date=status.end.isoformat() if status.end else "",
            )
            for status in statuses
        ],
    )


def draw_message(row: DrawRow, record: DrawRecord) -> staffing_pb2.DrawExplanation:
    """A recorded draw, explained."""
    return staffing_pb2.DrawExplanation(
        draw_id=row.draw_id,
        request_id=row.request_id,
        case_id=row.case_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        stage=row.stage,
        round=row.round,
        cause=row.cause,
        algorithm_version=record.algorithm_version,
        rules_version=record.rules_version,
        max_workload_distance=record.max_workload_distance,
        previous_hash=record.previous_hash,
        seed=record.seed,
        record_hash=row.record_hash,
        stages=[
            staffing_pb2.FilterStage(name=stage.name, remaining_person_ids=stage.remaining)
            for stage in record.stages
        ],
        exclusions=[
            staffing_pb2.Exclusion(
                person_id=exclusion.person_id,
                reason=exclusion.reason.value,
                detail=exclusion.detail,
            )
            for exclusion in record.exclusions
        ],
        member_person_ids=record.outcome.members,
        unfillable_reasons=record.outcome.unfillable_reasons,
        drawn_at=timestamp(row.drawn_at),
        override_reason=record.override_reason or "",
    )


def encode_token(after: str, county_id: str, zone_id: str) -> str:
    """A page token bound to the query it came from."""
    return encode_page_token(after, {"county": county_id, "zone": zone_id})


def decode_token(token: str, county_id: str, zone_id: str) -> str:
    """The cursor of a page token; ValueError when it is not for this query."""
    return decode_page_token(token, {"county": county_id, "zone": zone_id})


def json_list(text: str) -> list[str]:
    """A JSON list column (roles, skills)."""
    return [str(item) for item in json.loads(text)]
