"""`xiezuo assessment catch-up` applies every event type the running service applies."""

from __future__ import annotations

from services.assessment.app import build, build_rebuild
from services.assessment.handlers.projection import ProjectionHandler
from services.runtime.settings import Settings


async def test_the_catch_up_routes_what_the_service_routes() -> None:
    settings = Settings("assessment")
    host, _ = build(settings)
    rebuild, _producer, database = build_rebuild(settings, 1_000)
    assert rebuild.consumer.topics() == host.consumer.topics()
    assert rebuild.consumer.group_id == host.consumer.group_id
    assert rebuild.consumer.consumer_name == host.consumer.consumer_name
    counted = [r for r in rebuild.routes.values() if isinstance(r.handler, ProjectionHandler)]
    # Every counted type goes the bulk way; the registry, attendance and letters one by one.
    assert len(counted) > 20
    assert len(rebuild.routes) > len(counted)
    await database.dispose()
    await host.database.dispose()
