"""Composition root of the cases service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio

import grpc
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from services.cases.api.servicer import CaseServicer
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.handlers.clue_registered import ClueRegisteredHandler
from services.cases.handlers.teams import on_recusal, on_team_assigned, on_team_unfillable
from services.cases.store.clues import ClueReader
from services.contracts.intake import ClueRegistered
from services.contracts.staffing import RecusalRecorded, TeamAssigned, TeamUnfillable
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings

SERVICE_NAME = cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts]:
    """Wire cases: the clue ledger fed by intake's events, read over gRPC."""
    host = ServiceHost(settings)
    host.consumer.on(ClueRegistered, ClueRegisteredHandler([DEFAULT_RULES]))
    host.consumer.on(TeamAssigned, on_team_assigned)
    host.consumer.on(TeamUnfillable, on_team_unfillable)
    host.consumer.on(RecusalRecorded, on_recusal)
    servicer = CaseServicer(ClueReader(host.database))

    def register(server: grpc.aio.Server) -> None:
        cases_pb2_grpc.add_CaseServiceServicer_to_server(servicer, server)

    return host, GrpcParts(service_names=[SERVICE_NAME], register=register)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run cases until `stop` is set."""
    host, grpc_parts = build(settings)
    await host.run(grpc_parts, stop)
