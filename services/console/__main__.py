"""`python -m services.console`: serve the web console until SIGINT/SIGTERM.

Prints one JSON line `{"ready": {"service": "console", "http", "url", "metrics"}}` on stdout
once it listens (what `xiezuo up` waits for, like the services' ready line).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import uvicorn

from services.console.app import build_app
from services.console.settings import ConsoleSettings
from services.runtime.settings import PlatformSettings
from services.runtime.telemetry import (
    configure_logging,
    configure_tracing,
    shutdown_tracing,
    start_metrics_server,
)

log = logging.getLogger("services.console")
GRACEFUL_SHUTDOWN_SECONDS = 5


async def serve(settings: ConsoleSettings, platform: PlatformSettings) -> None:
    """Serve until uvicorn is told to stop (it handles SIGINT/SIGTERM itself)."""
    configure_logging("console", platform.log_level)
    tracer_provider = configure_tracing("console", platform.otlp_endpoint)
    app = build_app(settings, platform)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        # Our JSON logging on the root logger, not uvicorn's own format; no access log lines
        # (the request histogram and spans cover them, and paths may name cases).
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        # Live-notice streams never end on their own: on SIGTERM they are cut after this,
        # instead of holding the shutdown until the supervisor kills the process.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    # uvicorn offers no event for "listening"; its own flag is polled until set.
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    metrics_server, metrics_port = start_metrics_server(
        app.state.registry, settings.metrics_host, settings.metrics_port
    )
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        address = f"{settings.http_host}:{port}"
        url = settings.public_url or f"http://{address}/"
        ready = {
            "service": "console",
            "http": address,
            "url": url,
            "metrics": f"http://{settings.metrics_host}:{metrics_port}/metrics",
        }
        print(json.dumps({"ready": ready}), flush=True, file=sys.stdout)
        log.info("console ready", extra=ready)
    try:
        await task
    finally:
        metrics_server.stop()
        shutdown_tracing(tracer_provider)


def main() -> None:
    """Read the settings (refusing a bad production set-up) and serve."""
    asyncio.run(serve(ConsoleSettings(), PlatformSettings()))


if __name__ == "__main__":
    main()
