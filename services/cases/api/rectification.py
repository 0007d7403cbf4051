"""The rectification-item RPCs of CaseService (整改 follow-up)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from xiezuo.cases.v1 import cases_pb2

from services.cases.api.messages import timestamp
from services.cases.api.policy import authorize_rectification, readable_rectification_zones
from services.cases.domain.rectification import SOURCES, RectificationRefused
from services.cases.store.rectification import (
    NewRectification,
    Receipt,
    RectificationDesk,
    RectificationKeyReused,
    RectificationMissing,
    RectificationRecord,
)
from services.cases.store.tables import RectificationRow
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.runtime.grpc.paging import decode_page_token as decode_token
from services.runtime.grpc.paging import encode_page_token as encode_token
from services.runtime.tokens import Principal

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
_SOURCES = {
    cases_pb2.RECTIFICATION_SOURCE_SUPERVISION: "supervision",
    cases_pb2.RECTIFICATION_SOURCE_CAMPAIGN: "campaign",
    cases_pb2.RECTIFICATION_SOURCE_INSPECTION_TOUR: "inspection_tour",
}
_SOURCE_ENUMS = {name: value for value, name in _SOURCES.items()}
assert set(_SOURCE_ENUMS) == set(SOURCES)
MAX_TEXT = 4000
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def item_message(record: RectificationRecord) -> cases_pb2.RectificationItem:
    """An item with its progress as its gRPC message."""
    row = record.row
    message = cases_pb2.RectificationItem(
        item_id=row.item_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        township_id=row.township_id,
        source=_SOURCE_ENUMS.get(row.source, cases_pb2.RECTIFICATION_SOURCE_UNSPECIFIED),
        source_ref=row.source_ref,
        owner_unit=row.owner_unit,
        finding=row.finding,
        status=row.status,
        due_at=timestamp(row.due_at),
        escalated=row.escalated,
        rule_version=row.rule_version,
        opened_at=timestamp(row.opened_at),
        progress=[
            cases_pb2.RectificationProgress(
                at=timestamp(p.at),
                actor=p.actor,
                kind=p.kind,
                note=p.note,
                percent_done=p.percent_done,
            )
            for p in record.progress
        ],
    )
    if row.closed_at is not None:
        message.closed_at.CopyFrom(timestamp(row.closed_at))
    return message


def _receipt(principal: Principal, key: str, request: Message) -> Receipt:
    body = request.SerializeToString(deterministic=True)
    digest = hashlib.sha256(principal.subject.encode() + b"\x1f" + body).hexdigest()
    return Receipt(county_id=principal.county_id, key=key, digest=digest)


def _authorizer(principal: Principal, action: str) -> Callable[[RectificationRow], None]:
    def authorize(row: RectificationRow) -> None:
        authorize_rectification(
            principal, county_id=row.county_id, zone_id=row.zone_id, action=action
        )

    return authorize


def _text(violations: list[FieldViolation], field: str, value: str, *, required: bool) -> None:
    if required and not value.strip():
        violations.append(FieldViolation(field, "is required"))
    elif len(value) > MAX_TEXT:
        violations.append(FieldViolation(field, f"at most {MAX_TEXT} characters"))


@asynccontextmanager
async def _mapped_errors(item_id: str) -> AsyncIterator[None]:
    try:
        yield
    except RectificationMissing as missing:
        raise NotFound("rectification item", item_id) from missing
    except RectificationKeyReused as reused:
        raise InvalidArgument(
            [FieldViolation("idempotency_key", "was used for a different command")]
        ) from reused
    except RectificationRefused as refused:
        raise FailedPrecondition(str(refused)) from refused


class RectificationApi:
    """Open, report on, verify and read rectification items."""

    def __init__(self, *, rectifications: RectificationDesk) -> None:
        self._rectifications = rectifications

    async def OpenRectification(
        self, request: cases_pb2.OpenRectificationRequest, context: Context
    ) -> cases_pb2.OpenRectificationResponse:
        """Open an item from a finding; its due date comes from the rules in force."""
        violations: list[FieldViolation] = []
        for field in ("idempotency_key", "county_id", "zone_id", "township_id"):
            _text(violations, field, getattr(request, field), required=True)
        for field in ("source_ref", "owner_unit", "finding"):
            _text(violations, field, getattr(request, field), required=True)
        if request.source not in _SOURCES:
            violations.append(FieldViolation("source", "is required"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        async with _mapped_errors(""):
            record = await self._rectifications.open(
                NewRectification(
                    county_id=request.county_id,
                    zone_id=request.zone_id,
                    township_id=request.township_id,
                    source=_SOURCES[request.source],
                    source_ref=request.source_ref.strip(),
                    owner_unit=request.owner_unit.strip(),
                    finding=request.finding.strip(),
                ),
                receipt=_receipt(principal, request.idempotency_key, request),
                actor=principal.subject,
                authorize=_authorizer(principal, "open"),
            )
        return cases_pb2.OpenRectificationResponse(item=item_message(record))

    async def ReportRectificationProgress(
        self, request: cases_pb2.ReportRectificationProgressRequest, context: Context
    ) -> cases_pb2.ReportRectificationProgressResponse:
        """Record a progress report from the owner unit."""
        violations: list[FieldViolation] = []
        for field in ("idempotency_key", "item_id", "note"):
            _text(violations, field, getattr(request, field), required=True)
        if not 0 <= request.percent_done <= 100:
            violations.append(FieldViolation("percent_done", "must be 0..100"))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        async with _mapped_errors(request.item_id):
            record = await self._rectifications.report(
                request.item_id,
                note=request.note.strip(),
                percent_done=request.percent_done,
                receipt=_receipt(principal, request.idempotency_key, request),
                actor=principal.subject,
                authorize=_authorizer(principal, "report"),
            )
        return cases_pb2.ReportRectificationProgressResponse(item=item_message(record))

    async def VerifyRectification(
        self, request: cases_pb2.VerifyRectificationRequest, context: Context
    ) -> cases_pb2.VerifyRectificationResponse:
        """Verify completion; a verified completion closes the item (RectificationClosed)."""
        violations: list[FieldViolation] = []
        for field in ("idempotency_key", "item_id", "note"):
            _text(violations, field, getattr(request, field), required=True)
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        async with _mapped_errors(request.item_id):
            record = await self._rectifications.verify(
                request.item_id,
                done=request.done,
                note=request.note.strip(),
                receipt=_receipt(principal, request.idempotency_key, request),
                actor=principal.subject,
                authorize=_authorizer(principal, "verify"),
            )
        return cases_pb2.VerifyRectificationResponse(item=item_message(record))

    async def GetRectification(
        self, request: cases_pb2.GetRectificationRequest, context: Context
    ) -> cases_pb2.GetRectificationResponse:
        """One item with its progress."""
        if not request.item_id:
            raise InvalidArgument([FieldViolation("item_id", "is required")])
        principal = current_principal()
        record = await self._rectifications.get(
            request.item_id, actor=principal.subject, authorize=_authorizer(principal, "read")
        )
        if record is None:
            raise NotFound("rectification item", request.item_id)
        return cases_pb2.GetRectificationResponse(item=item_message(record))

    async def ListRectifications(
        self, request: cases_pb2.ListRectificationsRequest, context: Context
    ) -> cases_pb2.ListRectificationsResponse:
        """A page of a county's items in id order."""
        violations: list[FieldViolation] = []
        if not request.county_id:
            violations.append(FieldViolation("county_id", "is required"))
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be 0..{MAX_PAGE_SIZE}"))
        query = {"county": request.county_id, "zone": request.zone_id, "open": request.open_only}
        after = ""
        if request.page_token:
            try:
                after = decode_token(request.page_token, query)
            except ValueError as exc:
                violations.append(FieldViolation("page_token", str(exc)))
        if violations:
            raise InvalidArgument(violations)
        principal = current_principal()
        zones = readable_rectification_zones(
            principal, county_id=request.county_id, zone_id=request.zone_id
        )
        limit = request.page_size or DEFAULT_PAGE_SIZE
        records = await self._rectifications.page(
            county_id=request.county_id,
            zone_ids=zones,
            open_only=request.open_only,
            after=after,
            limit=limit + 1,
            actor=principal.subject,
        )
        token = ""
        if len(records) > limit:
            records = records[:limit]
            token = encode_token(records[-1].row.item_id, query)
        return cases_pb2.ListRectificationsResponse(
            items=[item_message(r) for r in records], next_page_token=token
        )
