"""gRPC face of cases."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cases.api.policy import authorize_read_clue, readable_zones
from services.cases.store.clues import ClueReader
from services.cases.store.tables import ClueRow
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import FieldViolation, InvalidArgument, NotFound

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_STATUSES = {"registered": cases_pb2.CLUE_STATUS_REGISTERED}

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class CaseServicer(cases_pb2_grpc.CaseServiceServicer):
    """Clues and cases, read by the commission's staff."""

    def __init__(self, clues: ClueReader) -> None:
        self._clues = clues

    async def GetClue(
        self, request: cases_pb2.GetClueRequest, context: Context
    ) -> cases_pb2.GetClueResponse:
        """One clue, if the caller's scope covers it."""
        if not request.clue_id:
            raise InvalidArgument([FieldViolation("clue_id", "is required")])
        principal = current_principal()
        row = await self._clues.get(request.clue_id, actor=principal.subject)
        if row is None:
            raise NotFound(f"clue {request.clue_id}")
        authorize_read_clue(
            principal, county_id=row.county_id, zone_id=row.zone_id, clue_id=row.clue_id
        )
        return cases_pb2.GetClueResponse(clue=clue_message(row))

    async def ListClues(
        self, request: cases_pb2.ListCluesRequest, context: Context
    ) -> cases_pb2.ListCluesResponse:
        """A page of the county's clues in id order."""
        violations = []
        if not request.county_id:
            violations.append(FieldViolation("county_id", "is required"))
        if request.page_size < 0 or request.page_size > MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be 0..{MAX_PAGE_SIZE}"))
        after = ""
        if request.page_token:
            try:
                after = _decode_token(request.page_token, request.county_id, request.zone_id)
            except ValueError as exc:
                violations.append(FieldViolation("page_token", str(exc)))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones = readable_zones(principal, county_id=request.county_id, zone_id=request.zone_id)
        limit = request.page_size or DEFAULT_PAGE_SIZE
        rows = await self._clues.page(
            county_id=request.county_id,
            zone_ids=zones,
            after=after,
            limit=limit + 1,
            actor=principal.subject,
        )
        next_token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            next_token = _encode_token(rows[-1].clue_id, request.county_id, request.zone_id)
        return cases_pb2.ListCluesResponse(
            clues=[clue_message(row) for row in rows], next_page_token=next_token
        )


def clue_message(row: ClueRow) -> cases_pb2.Clue:
    """A clue row as its gRPC message."""
    return cases_pb2.Clue(
        clue_id=row.clue_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        township_id=row.township_id,
        source_report_id=row.source_report_id,
        channel=row.channel,
        allegation_categories=json.loads(row.allegation_categories),
        status=_STATUSES.get(row.status, cases_pb2.CLUE_STATUS_UNSPECIFIED),
        registered_at=_timestamp(row.registered_at),
        disposal_due_at=_timestamp(row.disposal_due_at),
        rule_version=row.rule_version,
    )


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    # SQLite hands back naive datetimes; everything is stored in UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _encode_token(after: str, county_id: str, zone_id: str) -> str:
    # The token is bound to the query it came from, so it cannot be replayed on another one.
    raw = json.dumps({"after": after, "county": county_id, "zone": zone_id})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str, county_id: str, zone_id: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after, county, zone = data["after"], data["county"], data["zone"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("is not a token this service issued") from exc
    if county != county_id or zone != zone_id:
        raise ValueError("belongs to a different query")
    return str(after)
