"""Composition root of the staffing service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio

import grpc
from xiezuo.staffing.v1 import (
    registry_pb2,
    registry_pb2_grpc,
    staffing_pb2,
    staffing_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)

from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseTransferred,
    ClueDisposed,
    StageChanged,
    TeamRequested,
)
from services.contracts.collaboration import AssistanceLetterClosed, AssistanceTeamRequested
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings
from services.staffing.api.registry_servicer import RegistryServicer
from services.staffing.api.servicer import StaffingServicer
from services.staffing.api.training_servicer import TrainingServicer
from services.staffing.domain.draw_rules import DEFAULT_DRAW_RULES
from services.staffing.domain.workload import DEFAULT_WORKLOAD_RELEASE
from services.staffing.drawing import TeamDrawer
from services.staffing.handlers.assistance_team import (
    AssistanceTeamHandler,
    on_assistance_letter_closed,
)
from services.staffing.handlers.case_progress import CaseProgressHandler
from services.staffing.handlers.team_requested import TeamRequestedHandler
from services.staffing.secrets import CountySecrets
from services.staffing.settings import StaffingSettings
from services.staffing.store.rule_files import load_recusal_grounds

SERVICE_NAME = staffing_pb2.DESCRIPTOR.services_by_name["StaffingService"].full_name
TRAINING_SERVICE_NAME = training_pb2.DESCRIPTOR.services_by_name["TrainingService"].full_name
REGISTRY_SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts]:
    """Wire staffing: team draws fed by cases' requests, the registry and draws over gRPC."""
    host = ServiceHost(settings)
    # The master key of the county draw secrets lives beside the other keys, never in the DB.
    secrets = CountySecrets.from_key_dir(settings.platform.state_dir / "keys")
    drawer = TeamDrawer(secrets, [DEFAULT_DRAW_RULES])
    host.consumer.on(TeamRequested, TeamRequestedHandler(drawer))
    # An assistance letter this county accepted: a team from its own pool (collaboration).
    host.consumer.on(AssistanceTeamRequested, AssistanceTeamHandler(drawer))
    host.consumer.on(AssistanceLetterClosed, on_assistance_letter_closed)
    # Every workflow step names the stage the case enters; some end a team's work.
    progress = CaseProgressHandler(DEFAULT_WORKLOAD_RELEASE)
    for step in (StageChanged, ClueDisposed, CaseFiled, CaseDecided, CaseTransferred, CaseClosed):
        host.consumer.on(step, progress)
    servicer = StaffingServicer(
        host.database, drawer, load_recusal_grounds(StaffingSettings().recusal_grounds_file)
    )
    training = TrainingServicer(host.database)
    registry = RegistryServicer(host.database)

    def register(server: grpc.aio.Server) -> None:
        staffing_pb2_grpc.add_StaffingServiceServicer_to_server(servicer, server)
        training_pb2_grpc.add_TrainingServiceServicer_to_server(training, server)
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(registry, server)

    names = [SERVICE_NAME, TRAINING_SERVICE_NAME, REGISTRY_SERVICE_NAME]
    return host, GrpcParts(service_names=names, register=register)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run staffing until `stop` is set."""
    host, grpc_parts = build(settings)
    await host.run(grpc_parts, stop)
