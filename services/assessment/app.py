"""Composition root of the assessment service: the only place its parts are built and wired."""

from __future__ import annotations

import asyncio

from services.runtime.host import GrpcParts, ServiceHost
from services.runtime.settings import Settings


def build(settings: Settings) -> tuple[ServiceHost, GrpcParts]:
    """Wire assessment: for now the shared runtime only (outbox, inbox, audit, health)."""
    host = ServiceHost(settings)
    # Its gRPC contract and event handlers arrive with the assessment issue; until then the
    # process serves health, reflection and metrics so operators see it up.
    return host, GrpcParts(service_names=[], register=lambda server: None)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run assessment until `stop` is set."""
    host, grpc_parts = build(settings)
    await host.run(grpc_parts, stop)
