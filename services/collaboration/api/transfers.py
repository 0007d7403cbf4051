"""gRPC face of clue transfers (线索移送) and designations (指定管辖)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.collaboration.v1 import transfers_pb2 as pb
from xiezuo.collaboration.v1 import transfers_pb2_grpc as pb_grpc

from services.collaboration.api import policy
from services.collaboration.domain.network import Network
from services.collaboration.domain.transfer_rules import transfer_problems
from services.collaboration.letters import NotInNetwork, utc_now
from services.collaboration.store import idempotency, transfer_trail
from services.collaboration.store.network import current_network
from services.collaboration.transfers import TransferDesk
from services.contracts.transfers import TransferMode
from services.runtime.db import Database, as_utc
from services.runtime.grpc.auth import current_principal
from services.runtime.grpc.conversion import bounded_text
from services.runtime.grpc.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.tokens import Principal

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class TransferServicer(pb_grpc.TransferServiceServicer):
    """Sends clues from the counties this deployment holds keys for."""

    def __init__(self, database: Database, desk: TransferDesk) -> None:
        self._db = database
        self._desk = desk

    async def TransferClue(
        self, request: pb.TransferClueRequest, context: Context
    ) -> pb.TransferClueResponse:
        """County leadership hands a clue to another county."""
        principal = current_principal()
        if principal.roles.isdisjoint(policy.LEADERSHIP):
            raise PermissionDenied(f"{principal.subject} may not transfer clues (leadership)")
        if not principal.can_see_county(request.county_id):
            raise PermissionDenied(f"{principal.subject} does not speak for this county")
        transfer_id = await self._send(
            principal,
            "TransferClue",
            "transfer",
            request.idempotency_key,
            request.county_id,
            request.target_county_id,
            dict(request.fields),
            request.excerpt,
        )
        return pb.TransferClueResponse(
            transfer_id=transfer_id, allowlist_version=self._desk.rules.version
        )

    async def DesignateJurisdiction(
        self, request: pb.DesignateJurisdictionRequest, context: Context
    ) -> pb.DesignateJurisdictionResponse:
        """The city commission designates another county to handle a county's clue."""
        transfer_id = await self._send(
            current_principal(),
            "DesignateJurisdiction",
            "designation",
            request.idempotency_key,
            request.from_county_id,
            request.target_county_id,
            dict(request.fields),
            request.excerpt,
        )
        return pb.DesignateJurisdictionResponse(
            transfer_id=transfer_id, allowlist_version=self._desk.rules.version
        )

    async def GetTransferTrail(
        self, request: pb.GetTransferTrailRequest, context: Context
    ) -> pb.GetTransferTrailResponse:
        """The sending county's read-only trail: stage and decision kind of each step."""
        principal = current_principal()
        violations: list[FieldViolation] = []
        bounded_text(request.transfer_id, "transfer_id", violations, required=True)
        if violations:
            raise InvalidArgument(violations)
        async with self._db.session() as session:
            sent = await transfer_trail.sent(session, request.transfer_id)
            network = await current_network(session)
            city = network.city_id if network is not None else ""
            leadership = not principal.roles.isdisjoint(policy.LEADERSHIP)
            if sent is None:
                raise NotFound("transfer", request.transfer_id)
            if not (
                (leadership and principal.can_see_county(sent.county_id))
                or (sent.mode == "designation" and policy.is_city_commission(principal, city))
            ):
                raise PermissionDenied(
                    f"{principal.subject} may not read this trail (the sending county's "
                    "leadership; the city commission for a designation)"
                )
            steps = await transfer_trail.trail(session, sent.county_id, sent.transfer_id)
        return pb.GetTransferTrailResponse(
            transfer_id=sent.transfer_id,
            from_county_id=sent.county_id,
            target_county_id=sent.other_county,
            mode=sent.mode,
            sent_at=_stamp(sent.at),
            steps=[
                pb.TransferStep(stage=step.stage, decision=step.decision, at=_stamp(step.at))
                for step in steps
            ],
        )

    async def _send(
        self,
        principal: Principal,
        call: str,
        mode: TransferMode,
        key: str,
        from_county: str,
        to_county: str,
        fields: dict[str, str],
        excerpt: str,
    ) -> str:
        violations: list[FieldViolation] = []
        bounded_text(key, "idempotency_key", violations, required=True)
        from_name = "county_id" if mode == "transfer" else "from_county_id"
        bounded_text(from_county, from_name, violations, required=True)
        bounded_text(to_county, "target_county_id", violations, required=True)
        problems = transfer_problems(self._desk.rules.rule(mode), fields=fields, excerpt=excerpt)
        violations += [FieldViolation(name, problem) for name, problem in problems]
        if violations:
            raise InvalidArgument(violations)
        async with self._db.transaction() as session:
            network: Network | None = await current_network(session)
            if network is None:
                raise FailedPrecondition(
                    "no network file imported: `xiezuo collaboration network import FILE`",
                    kind="NETWORK",
                )
            if mode == "designation" and not policy.is_city_commission(principal, network.city_id):
                raise PermissionDenied(
                    f"{principal.subject} may not designate jurisdiction (city commission)"
                )
            request_print = idempotency.fingerprint(
                {"from": from_county, "to": to_county, "fields": fields, "excerpt": excerpt}
            )
            try:
                earlier = await idempotency.earlier_result(
                    session,
                    subject=principal.subject,
                    call=call,
                    key=key,
                    request_print=request_print,
                )
            except idempotency.KeyReused as reused:
                raise InvalidArgument([FieldViolation("idempotency_key", str(reused))]) from reused
            if earlier is not None:
                return earlier
            now = utc_now()
            try:
                record = await self._desk.send(
                    session,
                    network,
                    actor=principal.subject,
                    from_county=from_county,
                    to_county=to_county,
                    mode=mode,
                    fields=fields,
                    excerpt=excerpt,
                    now=now,
                )
            except NotInNetwork as refused:
                raise FailedPrecondition(str(refused)) from refused
            idempotency.remember(
                session,
                subject=principal.subject,
                call=call,
                key=key,
                request_print=request_print,
                result_id=record.letter_id,
                at=now,
            )
            return record.letter_id


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(as_utc(moment))
    return stamp
