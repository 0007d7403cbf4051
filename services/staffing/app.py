"""Composition root of the staffing service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio

import grpc
from xiezuo.staffing.v1 import staffing_pb2, staffing_pb2_grpc

from services.contracts.cases import TeamRequested
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings
from services.staffing.api.servicer import StaffingServicer
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.drawing import TeamDrawer
from services.staffing.handlers.team_requested import TeamRequestedHandler
from services.staffing.secrets import CountySecrets

SERVICE_NAME = staffing_pb2.DESCRIPTOR.services_by_name["StaffingService"].full_name


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts]:
    """Wire staffing: team draws fed by cases' requests, the registry and draws over gRPC."""
    host = ServiceHost(settings)
    # The master key of the county draw secrets lives beside the other keys, never in the DB.
    secrets = CountySecrets.from_key_dir(settings.platform.state_dir / "keys")
    drawer = TeamDrawer(secrets, [DEFAULT_DRAW_RULES])
    host.consumer.on(TeamRequested, TeamRequestedHandler(drawer))
    servicer = StaffingServicer(host.database, drawer)

    def register(server: grpc.aio.Server) -> None:
        staffing_pb2_grpc.add_StaffingServiceServicer_to_server(servicer, server)

    return host, GrpcParts(service_names=[SERVICE_NAME], register=register)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run staffing until `stop` is set."""
    host, grpc_parts = build(settings)
    await host.run(grpc_parts, stop)
