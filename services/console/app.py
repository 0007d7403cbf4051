"""Composition root of the web console: the only place its parts are built and wired.

The console is a client of the services' gRPC APIs and holds no domain data. Pages are the
modules of `services/console/pages/` exposing `ROUTES` (and optionally `NAV`); they are found
here with pkgutil, so adding a page never edits this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Histogram
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import pages
from services.console.grpc_calls import Refused, Stubs
from services.console.live import LiveFeed, LiveMetrics
from services.console.locale import Catalogue
from services.console.session import SignInRequired, SignOuts, sign_out
from services.console.settings import ConsoleSettings
from services.console.signin import TokenMinter, dev_directory, oidc_client
from services.console.web import CsrfMiddleware, NavLink, SignInGate, render, sign_in_redirect
from services.runtime.keyfiles import create_once
from services.runtime.settings import SERVICES, PlatformSettings, Settings
from services.runtime.telemetry import GRPC_BUCKETS

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
SESSION_COOKIE = "xiezuo_console"
# Reachable without signing in: the sign-in pages, the probes, the assets.
PUBLIC_PATHS = (
    "/sign-in",
    "/sign-in/",
    "/sign-out",
    "/language",
    "/oidc/",
    "/static/",
    "/healthz",
    "/readyz",
)
READY_CHECK_SECONDS = 2.0
log = logging.getLogger(__name__)


def discover_pages() -> tuple[list[BaseRoute], list[NavLink]]:
    """Every page module's ROUTES and NAV, in module-name order."""
    routes: list[BaseRoute] = []
    nav: list[NavLink] = []
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{pages.__name__}.{info.name}")
        found = getattr(module, "ROUTES", None)
        if found is None:
            continue
        routes.extend(found)
        nav.extend(getattr(module, "NAV", ()))
    nav.sort(key=lambda link: (link.order, link.path))
    return routes, nav


def session_secret(settings: ConsoleSettings, platform: PlatformSettings) -> str:
    """The cookie-signing key: the configured file, or a dev key made once in the state dir."""
    if settings.session_secret_file is not None:
        return settings.session_secret_file.read_text(encoding="utf-8").strip()
    path = platform.state_dir / "keys" / "console-session.key"
    return create_once(path, secrets.token_urlsafe(48).encode("ascii")).decode("ascii").strip()


class RequestTelemetry:
    """A server span and a duration observation per request, labelled by route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.histogram = histogram
        # To name the route of a request answered before routing (the sign-in gate's redirect).
        self.routes = routes
        self.tracer = trace.get_tracer("xiezuo.console")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = 500
        streaming = False

        async def sending(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                streaming = content_type.startswith(b"text/event-stream")
            await send(message)

        started = time.perf_counter()
        name = f"{scope['method']} {scope['path']}"
        with self.tracer.start_as_current_span(
            name, context=propagate.extract(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = self._route(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.status_code", status)
                # A live-notice stream stays open for hours: it is no page answer to time
                # (the live feed's own gauge counts those connections).
                if not streaming:
                    self.histogram.labels(route, scope["method"], str(status)).observe(
                        time.perf_counter() - started
                    )

    def _route(self, scope: Scope) -> str:
        routed = getattr(scope.get("route"), "path", None)
        if routed:
            return str(routed)
        for candidate in self.routes:
            if candidate.matches(scope)[0] is not Match.NONE:
                return str(getattr(candidate, "path", "unmatched"))
        return "unmatched"


def build_app(settings: ConsoleSettings, platform: PlatformSettings | None = None) -> Starlette:
    """The console's ASGI app: pages, probes, sessions, CSRF, sign-in gate.

    Its Prometheus registry is `app.state.registry`; `python -m services.console` serves it
    on the metrics port.
    """
    platform = platform or PlatformSettings()
    registry = CollectorRegistry()
    histogram = Histogram(
        "xiezuo_console_request_seconds",
        "Time to answer one console request, by route template, method and status.",
        ["route", "method", "status"],
        buckets=GRPC_BUCKETS,
        registry=registry,
    )
    page_routes, nav = discover_pages()
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals["static_version"] = _static_version()
    catalogue = Catalogue.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channels = {
            service: grpc.aio.insecure_channel(Settings(service, platform).grpc_address)
            for service in SERVICES
        }
        app.state.channels = channels
        app.state.stubs = Stubs(channels)
        feed = LiveFeed(
            platform.kafka_bootstrap,
            security=platform.kafka_security(),
            metrics=LiveMetrics(registry),
        )
        app.state.live_feed = feed
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()
            await asyncio.gather(*(channel.close() for channel in channels.values()))

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
        *page_routes,
    ]
    middleware = [
        Middleware(RequestTelemetry, histogram=histogram, routes=routes),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(settings, platform),
            session_cookie=SESSION_COOKIE,
            max_age=settings.session_max_age_seconds,
            same_site="lax",
            https_only=settings.production,
        ),
        Middleware(CsrfMiddleware),
        Middleware(SignInGate, public=PUBLIC_PATHS),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: http_error,
            SignInRequired: sign_in_again,
            Refused: refused,
        },
    )
    app.state.settings = settings
    app.state.platform = platform
    app.state.registry = registry
    app.state.templates = templates
    app.state.catalogue = catalogue
    app.state.nav = nav
    app.state.minter = TokenMinter(settings, platform)
    app.state.sign_outs = SignOuts()
    app.state.dev_people = dev_directory(settings.dev_county_file) if settings.dev_sign_in else []
    app.state.oidc = oidc_client(settings)
    return app


def _static_version() -> str:
    """Changes whenever a static file does, so browsers fetch new assets after a release."""
    newest = max((p.stat().st_mtime_ns for p in STATIC_DIR.iterdir()), default=0)
    return format(newest % 1_000_000_007, "x")


async def healthz(request: Request) -> Response:
    """Alive: the process answers."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Ready when every service answers its gRPC health check SERVING."""
    channels: dict[str, grpc.aio.Channel] = request.app.state.channels

    async def check(service: str, channel: grpc.aio.Channel) -> tuple[str, str]:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=READY_CHECK_SECONDS
            )
        except grpc.aio.AioRpcError as error:
            return service, error.code().name
        return service, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    results = dict(await asyncio.gather(*(check(s, c) for s, c in channels.items())))
    ready = all(state == "SERVING" for state in results.values())
    return JSONResponse({"ready": ready, "services": results}, status_code=200 if ready else 503)


async def http_error(request: Request, exc: Exception) -> Response:
    """403, 404, 503 ... as a page in the user's language (plain text for non-pages)."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/static/"):
        return PlainTextResponse(exc.detail, status_code=exc.status_code)
    return _error_page(request, exc.status_code, exc.detail)


async def sign_in_again(request: Request, exc: Exception) -> Response:
    """The services refused the session's token (expired): sign in afresh."""
    sign_out(request)
    return sign_in_redirect(request, expired=True)


async def refused(request: Request, exc: Exception) -> Response:
    """A refusal the page did not show inline: a page listing what the service said."""
    assert isinstance(exc, Refused)
    return _error_page(request, exc.status, exc.message, violations=exc.violations)


def _error_page(request: Request, status: int, detail: str, **extra: Any) -> Response:
    known = status in (400, 403, 404, 409, 502, 503)
    title_key = f"core.error.{status}" if known else "core.error.other"
    return render(
        request,
        "core/error.html",
        {"status": status, "detail": detail, "title_key": title_key, **extra},
        status_code=status,
    )


__all__: Sequence[str] = ("build_app", "discover_pages")
