"""Composition root of the intake service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio

import grpc
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.intake.api.servicer import IntakeServicer
from services.intake.store.reports import ReportRegistry
from services.intake.store.vault import Vault
from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings

SERVICE_NAME = intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name


def vault_for(settings: Settings) -> Vault:
    """The configured key-encryption key, or a generated dev key under the state dir."""
    platform = settings.platform
    key_file = platform.vault_key_file or Vault.ensure_dev_key(
        platform.state_dir / "keys" / "intake-vault-kek.hex"
    )
    return Vault.from_key_file(key_file)


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts]:
    """Wire intake: vault and registry over the host's database, one gRPC servicer."""
    host = ServiceHost(settings)
    servicer = IntakeServicer(ReportRegistry(host.database, vault_for(settings)))

    def register(server: grpc.aio.Server) -> None:
        intake_pb2_grpc.add_IntakeServiceServicer_to_server(servicer, server)

    return host, GrpcParts(service_names=[SERVICE_NAME], register=register)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run intake until `stop` is set."""
    host, grpc_parts = build(settings)
    await host.run(grpc_parts, stop)
