"""gRPC face of collaboration: assistance letters and the network in force."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from xiezuo.collaboration.v1 import collaboration_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc as pb_grpc

from services.collaboration.api import policy
from services.collaboration.domain.letter import Direction, LetterState, StepRefused
from services.collaboration.domain.letter_kinds import LetterKind, content_problems
from services.collaboration.domain.network import Network
from services.collaboration.letters import LetterDesk, NotInNetwork, utc_now
from services.collaboration.metrics import LetterMetrics
from services.collaboration.store import idempotency, letters
from services.collaboration.store.network import current_network
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import Attachment
from services.runtime.backentry import check_back_entry
from services.runtime.db import Database, as_utc
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import bounded_text, page_size
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.runtime.grpc.paging import decode_page_token, encode_page_token
from services.runtime.tokens import Principal

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

KINDS = {
    pb.LETTER_KIND_VERIFY_FACT: LetterKind.VERIFY_FACT,
    pb.LETTER_KIND_WITNESS_STATEMENT: LetterKind.WITNESS_STATEMENT,
    pb.LETTER_KIND_REGISTRY_CHECK: LetterKind.REGISTRY_CHECK,
    pb.LETTER_KIND_LOCATE_PERSON: LetterKind.LOCATE_PERSON,
    pb.LETTER_KIND_OTHER: LetterKind.OTHER,
}
KIND_NUMBERS = {kind: number for number, kind in KINDS.items()}
STATE_NUMBERS = {
    LetterState.AWAITING_APPROVAL: pb.LETTER_STATE_AWAITING_APPROVAL,
    LetterState.SENT: pb.LETTER_STATE_SENT,
    LetterState.RECEIVED: pb.LETTER_STATE_RECEIVED,
    LetterState.ACCEPTED: pb.LETTER_STATE_ACCEPTED,
    LetterState.DECLINED: pb.LETTER_STATE_DECLINED,
    LetterState.ANSWERED: pb.LETTER_STATE_ANSWERED,
}
DIRECTIONS = {
    pb.LETTER_DIRECTION_UNSPECIFIED: Direction.OUTBOUND,
    pb.LETTER_DIRECTION_OUTBOUND: Direction.OUTBOUND,
    pb.LETTER_DIRECTION_INBOUND: Direction.INBOUND,
}
DIRECTION_NUMBERS = {
    Direction.OUTBOUND: pb.LETTER_DIRECTION_OUTBOUND,
    Direction.INBOUND: pb.LETTER_DIRECTION_INBOUND,
}
GROUND_MAX, FINDINGS_MAX = 1000, 4000


def _stamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(as_utc(moment))
    return stamp


def letter_message(row: LetterRow, *, coordinator_view: bool = False) -> pb.Letter:
    """A letter row as its message; the city commission's view leaves out the case content."""
    message = pb.Letter(
        letter_id=row.letter_id,
        county_id=row.county_id,
        direction=DIRECTION_NUMBERS[Direction(row.direction)],
        counterpart_county_id=row.counterpart_county,
        kind=KIND_NUMBERS[LetterKind(row.kind)],
        allowlist_version=row.allowlist_version,
        due_date=row.due_date.isoformat(),
        state=STATE_NUMBERS[LetterState(row.state)],
        requested_at=_stamp(row.requested_at),
        approved_at=_stamp(row.approved_at),
        decided_at=_stamp(row.decided_at),
        answered_at=_stamp(row.answered_at),
        network_version=row.network_version,
    )
    if coordinator_view:
        return message
    message.case_id = row.case_id or ""
    message.zone_id = row.zone_id or ""
    message.question = row.question
    message.fields.update(letters.fields_of(row))
    message.excerpt = row.excerpt
    message.decline_ground = row.decline_ground or ""
    message.findings = row.findings or ""
    message.attachments.extend(pb.Attachment(**a) for a in letters.attachments_of(row))  # type: ignore[arg-type]
    if row.team_draw_id:
        team = json.loads(row.team_json or "{}")
        message.team_draw_id = row.team_draw_id
        message.team_person_ids.extend(team.get("members", []))
        message.team_unfillable_reasons.extend(team.get("reasons", []))
    return message


class CollaborationServicer(pb_grpc.CollaborationServiceServicer):
    """Letters between the counties this deployment speaks for and the rest of the network."""

    def __init__(
        self,
        database: Database,
        desk: LetterDesk,
        metrics: LetterMetrics | None = None,
        *,
        back_entry_days: int = 0,
    ) -> None:
        self._db = database
        self._desk = desk
        self._metrics = metrics
        self._back_entry_days = back_entry_days

    def _moment(
        self,
        principal: Principal,
        request: Any,
        *,
        after: datetime | None = None,
        after_what: str = "",
    ) -> tuple[datetime, datetime | None]:
        """(when the step takes effect, its real entry time if back-dated (补录) else None)."""
        now = utc_now()
        if not request.HasField("effective_at"):
            return now, None
        effective = request.effective_at.ToDatetime(tzinfo=UTC)
        check_back_entry(
            principal,
            effective,
            now=now,
            window_days=self._back_entry_days,
            not_before=None if after is None else as_utc(after),
            not_before_what=after_what,
        )
        return effective, now

    @staticmethod
    def _dated(request: Any) -> str:
        """The back-entry moment as the idempotency fingerprint sees it ("" when unset)."""
        if not request.HasField("effective_at"):
            return ""
        return str(request.effective_at.ToDatetime(tzinfo=UTC).isoformat())

    def _count(self, row: LetterRow, step: str) -> None:
        """Count a step after its transaction committed (a repeated key is not counted)."""
        if self._metrics is None:
            return
        asker, asked = (
            (row.county_id, row.counterpart_county)
            if row.direction == Direction.OUTBOUND
            else (row.counterpart_county, row.county_id)
        )
        self._metrics.step(from_county=asker, to_county=asked, kind=row.kind, step=step)

    async def _network(self, session: AsyncSession) -> Network:
        network = await current_network(session)
        if network is None:
            raise FailedPrecondition(
                "no network file imported: `xiezuo collaboration network import FILE`",
                kind="NETWORK",
            )
        return network

    async def _once(
        self,
        session: AsyncSession,
        principal: Principal,
        call: str,
        key: str,
        request_fields: dict[str, Any],
        act: Callable[[], Awaitable[LetterRow]],
    ) -> tuple[LetterRow, bool]:
        """Run `act` once per idempotency key; a repeat returns the letter as it is now.

        The flag says whether `act` ran (False for a repeat).
        """
        fingerprint = idempotency.fingerprint(request_fields)
        try:
            earlier = await idempotency.earlier_result(
                session, subject=principal.subject, call=call, key=key, request_print=fingerprint
            )
        except idempotency.KeyReused as reused:
            raise InvalidArgument([FieldViolation("idempotency_key", str(reused))]) from reused
        if earlier is not None:
            row = await letters.get(session, principal.county_id, earlier)
            if row is not None:
                return row, False
        try:
            row = await act()
        except (StepRefused, NotInNetwork) as refused:
            raise FailedPrecondition(str(refused)) from refused
        idempotency.remember(
            session,
            subject=principal.subject,
            call=call,
            key=key,
            request_print=fingerprint,
            result_id=row.letter_id,
            at=utc_now(),
        )
        return row, True

    async def _own_letter(
        self, session: AsyncSession, principal: Principal, letter_id: str
    ) -> LetterRow:
        row = await letters.get(session, principal.county_id, letter_id)
        if row is None:
            raise NotFound("letter", letter_id)
        return row

    async def RequestLetter(
        self, request: pb.RequestLetterRequest, context: Context
    ) -> pb.RequestLetterResponse:
        """Draft a letter from a case; only fields the kind's allowlist names."""
        principal = current_principal()
        violations: list[FieldViolation] = []
        for name in ("idempotency_key", "county_id", "zone_id", "case_id", "target_county_id"):
            bounded_text(getattr(request, name), name, violations, required=True)
        kind = KINDS.get(request.kind)
        if kind is None:
            violations.append(FieldViolation("kind", "must be set"))
        else:
            problems = content_problems(
                self._desk.kinds.rule(kind),
                question=request.question,
                fields=dict(request.fields),
                excerpt=request.excerpt,
            )
            violations += [FieldViolation(name, problem) for name, problem in problems]
        if violations:
            raise InvalidArgument(violations)
        assert kind is not None
        policy.authorize_request(principal, county_id=request.county_id, zone_id=request.zone_id)
        now, recorded_at = self._moment(principal, request)
        async with self._db.transaction() as session:
            network = await self._network(session)
            row, _ = await self._once(
                session,
                principal,
                "RequestLetter",
                request.idempotency_key,
                {
                    "county": request.county_id,
                    "zone": request.zone_id,
                    "case": request.case_id,
                    "target": request.target_county_id,
                    "kind": kind.value,
                    "question": request.question,
                    "fields": dict(request.fields),
                    "excerpt": request.excerpt,
                    "effective_at": self._dated(request),
                },
                lambda: self._desk.request(
                    session,
                    network,
                    actor=principal.subject,
                    county_id=request.county_id,
                    zone_id=request.zone_id,
                    case_id=request.case_id,
                    target=request.target_county_id,
                    kind=kind,
                    question=request.question,
                    fields=dict(request.fields),
                    excerpt=request.excerpt,
                    now=now,
                    recorded_at=recorded_at,
                ),
            )
        return pb.RequestLetterResponse(letter=letter_message(row))

    async def ApproveLetter(
        self, request: pb.ApproveLetterRequest, context: Context
    ) -> pb.ApproveLetterResponse:
        """Leadership approves a drafted letter: it is signed and sent."""
        principal = current_principal()
        self._require(idempotency_key=request.idempotency_key, letter_id=request.letter_id)
        async with self._db.transaction() as session:
            network = await self._network(session)
            row = await self._own_letter(session, principal, request.letter_id)
            policy.authorize_leadership(principal, row=row, step="approve")
            now, recorded_at = self._moment(
                principal, request, after=row.requested_at, after_what="the letter's request"
            )
            row, acted = await self._once(
                session,
                principal,
                "ApproveLetter",
                request.idempotency_key,
                {"letter": request.letter_id, "effective_at": self._dated(request)},
                lambda: self._desk.approve(
                    session,
                    network,
                    row,
                    actor=principal.subject,
                    now=now,
                    recorded_at=recorded_at,
                ),
            )
        if acted:
            self._count(row, "sent")
        return pb.ApproveLetterResponse(letter=letter_message(row))

    async def DecideLetter(
        self, request: pb.DecideLetterRequest, context: Context
    ) -> pb.DecideLetterResponse:
        """Leadership of the asked county accepts, or declines with a ground."""
        principal = current_principal()
        self._require(idempotency_key=request.idempotency_key, letter_id=request.letter_id)
        violations: list[FieldViolation] = []
        bounded_text(
            request.ground, "ground", violations, max_length=GROUND_MAX, required=not request.accept
        )
        bounded_text(request.subject_township_id, "subject_township_id", violations, max_length=64)
        if request.subject_township_id and not request.accept:
            violations.append(
                FieldViolation("subject_township_id", "only an accepted letter has a team drawn")
            )
        if violations:
            raise InvalidArgument(violations)
        async with self._db.transaction() as session:
            network = await self._network(session)
            row = await self._own_letter(session, principal, request.letter_id)
            policy.authorize_leadership(
                principal, row=row, step="accept" if request.accept else "decline"
            )
            now, recorded_at = self._moment(
                principal, request, after=row.approved_at, after_what="the letter's approval"
            )
            row, acted = await self._once(
                session,
                principal,
                "DecideLetter",
                request.idempotency_key,
                {
                    "letter": request.letter_id,
                    "accept": request.accept,
                    "ground": request.ground,
                    "subject_township_id": request.subject_township_id,
                    "effective_at": self._dated(request),
                },
                lambda: self._desk.decide(
                    session,
                    network,
                    row,
                    actor=principal.subject,
                    accept=request.accept,
                    ground=request.ground,
                    now=now,
                    subject_township_id=request.subject_township_id,
                    recorded_at=recorded_at,
                ),
            )
        if acted:
            self._count(row, "accepted" if request.accept else "declined")
        return pb.DecideLetterResponse(letter=letter_message(row))

    async def AnswerLetter(
        self, request: pb.AnswerLetterRequest, context: Context
    ) -> pb.AnswerLetterResponse:
        """The asked county answers with findings and attachment metadata."""
        principal = current_principal()
        self._require(idempotency_key=request.idempotency_key, letter_id=request.letter_id)
        violations: list[FieldViolation] = []
        bounded_text(
            request.findings, "findings", violations, max_length=FINDINGS_MAX, required=True
        )
        attachments: list[Attachment] = []
        for index, item in enumerate(request.attachments):
            try:
                attachments.append(
                    Attachment(
                        name=item.name,
                        sha256=item.sha256,
                        size_bytes=item.size_bytes,
                        media_type=item.media_type,
                    )
                )
            except ValidationError as invalid:
                for error in invalid.errors():
                    where = ".".join(str(part) for part in error["loc"])
                    violations.append(FieldViolation(f"attachments[{index}].{where}", error["msg"]))
        if len(attachments) > 20:
            violations.append(FieldViolation("attachments", "at most 20"))
        if violations:
            raise InvalidArgument(violations)
        async with self._db.transaction() as session:
            network = await self._network(session)
            row = await self._own_letter(session, principal, request.letter_id)
            policy.authorize_answer(principal, row=row)
            now, recorded_at = self._moment(
                principal, request, after=row.decided_at, after_what="the letter's acceptance"
            )
            row, acted = await self._once(
                session,
                principal,
                "AnswerLetter",
                request.idempotency_key,
                {
                    "letter": request.letter_id,
                    "findings": request.findings,
                    "attachments": [a.model_dump() for a in attachments],
                    "effective_at": self._dated(request),
                },
                lambda: self._desk.answer(
                    session,
                    network,
                    row,
                    actor=principal.subject,
                    findings=request.findings,
                    attachments=attachments,
                    now=now,
                    recorded_at=recorded_at,
                ),
            )
        if acted:
            self._count(row, "answered")
        return pb.AnswerLetterResponse(letter=letter_message(row))

    async def GetLetter(
        self, request: pb.GetLetterRequest, context: Context
    ) -> pb.GetLetterResponse:
        """One letter: the caller's county's side, or the city commission's reduced view."""
        principal = current_principal()
        self._require(letter_id=request.letter_id)
        async with self._db.session() as session:
            network = await current_network(session)
            if network is not None and policy.is_city_commission(principal, network.city_id):
                row = await letters.outbound_by_id(session, request.letter_id)
                if row is None or network.member(row.county_id) is None:
                    raise NotFound("letter", request.letter_id)
                return pb.GetLetterResponse(letter=letter_message(row, coordinator_view=True))
            row = await self._own_letter(session, principal, request.letter_id)
            policy.authorize_read(principal, row=row)
        return pb.GetLetterResponse(letter=letter_message(row))

    async def ListLetters(
        self, request: pb.ListLettersRequest, context: Context
    ) -> pb.ListLettersResponse:
        """A county's letters on one side, oldest first, only those the caller may read."""
        principal = current_principal()
        violations: list[FieldViolation] = []
        size = page_size(request.page_size, violations, maximum=200, default=50)
        direction = DIRECTIONS.get(request.direction)
        if direction is None:
            violations.append(FieldViolation("direction", "is not a known value"))
            direction = Direction.OUTBOUND
        query = {"county": request.county_id, "direction": direction.value}
        after: tuple[datetime, str] | None = None
        if request.page_token:
            try:
                at, _, letter_id = decode_page_token(request.page_token, query).partition("|")
                after = (datetime.fromisoformat(at), letter_id)
            except ValueError as refused:
                violations.append(FieldViolation("page_token", str(refused)))
        if violations:
            raise InvalidArgument(violations)
        async with self._db.session() as session:
            network = await current_network(session)
            coordinator = network is not None and policy.is_city_commission(
                principal, network.city_id
            )
            if coordinator:
                assert network is not None
                members = [c.county_id for c in network.counties]
                counties = [request.county_id] if request.county_id in members else members
                if request.county_id and request.county_id not in members:
                    raise NotFound("county", request.county_id)
            else:
                policy.listable(principal, county_id=request.county_id)
                counties = [request.county_id]
            rows = await letters.page(
                session, counties=counties, direction=direction.value, after=after, limit=size + 1
            )
        more = len(rows) > size
        rows = rows[:size]
        next_token = ""
        if more:
            last = rows[-1]
            next_token = encode_page_token(
                f"{as_utc(last.requested_at).isoformat()}|{last.letter_id}", query
            )
        if coordinator:
            shown = [letter_message(row, coordinator_view=True) for row in rows]
        else:
            shown = [letter_message(row) for row in rows if policy.visible_in_list(principal, row)]
        return pb.ListLettersResponse(letters=shown, next_page_token=next_token)

    async def GetNetwork(
        self, request: pb.GetNetworkRequest, context: Context
    ) -> pb.GetNetworkResponse:
        """The network in force, for any member county's caller or the city commission."""
        principal = current_principal()
        async with self._db.session() as session:
            network = await self._network(session)
        if network.member(principal.county_id) is None and not policy.is_city_commission(
            principal, network.city_id
        ):
            raise NotFound("network of county", principal.county_id)
        return pb.GetNetworkResponse(
            network_id=network.network_id,
            version=network.version,
            city_commission_id=network.city_id,
            city_commission_name=network.city_name,
            counties=[
                pb.NetworkCounty(
                    county_id=c.county_id,
                    name=c.name,
                    public_key=c.public_key_pem,
                    own_calendar=c.calendar_text is not None,
                )
                for c in network.counties
            ],
            agreements=[
                pb.NetworkAgreement(
                    county_ids=sorted(a.counties),
                    kinds=sorted(KIND_NUMBERS[k] for k in a.kinds),
                )
                for a in network.agreements
            ],
        )

    @staticmethod
    def _require(**fields: str) -> None:
        violations: list[FieldViolation] = []
        for name, value in fields.items():
            bounded_text(value, name, violations, required=True)
        if violations:
            raise InvalidArgument(violations)
