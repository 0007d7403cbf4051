"""Core pages: home, sign-in (dev and OIDC), sign-out, the language switch."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from xiezuo.staffing.v1 import registry_pb2

from services.console.grpc_calls import call, stubs
from services.console.session import (
    ID_TOKEN_KEY,
    LANG_KEY,
    current_user,
    sign_in,
    sign_out,
    signed_in,
)
from services.console.settings import LANGUAGES
from services.console.signin import ClaimsRefused, DevPerson, identity_from_claims
from services.console.web import NavLink, render, safe_next

log = logging.getLogger(__name__)
NEXT_KEY = "next"
# Why the user is asked to sign in (again): each has a `core.sign_in.error_<name>` string.
SIGN_IN_ERRORS = frozenset({"oidc", "expired"})

NAV = [NavLink("/", "core.nav.home", order=0)]


async def home(request: Request) -> Response:
    """The signed-in user's start page: who they are, their zones by name, where they can go."""
    user = signed_in(request)
    names: dict[str, str] = {}
    try:
        reply = await call(
            request,
            stubs(request).registry.ListZones,
            registry_pb2.ListZonesRequest(county_id=user.county_id, page_size=100),
        )
        names = {zone.zone_id: zone.name for zone in reply.zones}
    except HTTPException:
        # The start page still shows (ids only) while staffing is down or says no.
        pass
    zones = [(zone_id, names.get(zone_id, "")) for zone_id in user.zone_ids if zone_id != "*"]
    return render(request, "core/home.html", {"zones": zones})


async def sign_in_page(request: Request) -> Response:
    """The sign-in choices: the county's identity provider, and in development any person."""
    state = request.app.state
    people: list[DevPerson] = state.dev_people if state.settings.dev_sign_in else []
    # By zone, in the zones' own order (z-1, z-2, ...), county-level people last.
    by_zone: dict[str, list[DevPerson]] = {}
    for person in people:
        by_zone.setdefault(person.zone_id, []).append(person)
    zones = [
        (group[0].zone_name or zone_id, group)
        for zone_id, group in sorted(by_zone.items(), key=lambda item: (not item[0], item[0]))
    ]
    known_error = request.query_params.get("error") in SIGN_IN_ERRORS
    return render(
        request,
        "core/sign_in.html",
        {
            "next": safe_next(request.query_params.get(NEXT_KEY)),
            "oidc": state.oidc is not None,
            "dev": state.settings.dev_sign_in,
            "zones": zones,
            "signed_in_as": current_user(request),
            "error": request.query_params.get("error", "") if known_error else "",
        },
    )


async def dev_sign_in(request: Request) -> Response:
    """Mint a dev token for the chosen person of the county file (never in production)."""
    state = request.app.state
    if not state.settings.dev_sign_in or state.settings.production:
        raise HTTPException(404)
    form = await request.form()
    chosen = str(form.get("person_id", ""))
    person = next((p for p in state.dev_people if p.person_id == chosen), None)
    if person is None:
        raise HTTPException(400, "no such person in the county file")
    sign_in(request, state.minter.mint(person.identity()))
    log.info("dev sign-in", extra={"subject": person.person_id})
    return RedirectResponse(safe_next(str(form.get(NEXT_KEY, ""))), status_code=303)


async def oidc_start(request: Request) -> Response:
    """Off to the county's identity provider (authorization code + PKCE)."""
    client = request.app.state.oidc
    if client is None:
        raise HTTPException(404)
    request.session[NEXT_KEY] = safe_next(request.query_params.get(NEXT_KEY))
    response: Response = await client.authorize_redirect(request, _callback_url(request))
    return response


async def oidc_callback(request: Request) -> Response:
    """Back from the provider: check its answer, map its claims, mint our token."""
    from authlib.integrations.base_client.errors import OAuthError

    client = request.app.state.oidc
    if client is None:
        raise HTTPException(404)
    try:
        token = await client.authorize_access_token(request)
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        if "access_token" in token and client.server_metadata.get("userinfo_endpoint"):
            claims = {**dict(await client.userinfo(token=token)), **claims}
        identity = identity_from_claims(claims, request.app.state.settings)
    except (OAuthError, ClaimsRefused) as error:
        log.warning("OIDC sign-in refused", extra={"error_type": type(error).__name__})
        return RedirectResponse("/sign-in?error=oidc", status_code=303)
    target = safe_next(request.session.pop(NEXT_KEY, None))
    sign_in(request, request.app.state.minter.mint(identity))
    if isinstance(token.get("id_token"), str):
        # For RP-initiated logout: the provider ends its own session for this ID token.
        request.session[ID_TOKEN_KEY] = token["id_token"]
    log.info("OIDC sign-in", extra={"subject": identity.subject})
    return RedirectResponse(target, status_code=303)


def _callback_url(request: Request) -> str:
    return _console_url(request, "/oidc/callback")


def _console_url(request: Request, path: str) -> str:
    """An absolute URL of the console (behind the Ingress: on the public URL)."""
    public = request.app.state.settings.public_url
    if public:
        return f"{public.rstrip('/')}{path}"
    return str(request.base_url).rstrip("/") + path


async def sign_out_now(request: Request) -> Response:
    """End the session; after an OIDC sign-in, end the provider's session too (RP-initiated
    logout) when its metadata names an end_session_endpoint."""
    id_token = request.session.get(ID_TOKEN_KEY)
    sign_out(request)
    client = request.app.state.oidc
    if client is None or not isinstance(id_token, str):
        return RedirectResponse("/sign-in", status_code=303)
    try:
        metadata = await client.load_server_metadata()
    except Exception as error:  # the provider down must not keep anyone signed in here
        log.warning(
            "OIDC metadata unavailable at sign-out", extra={"error_type": type(error).__name__}
        )
        return RedirectResponse("/sign-in", status_code=303)
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return RedirectResponse("/sign-in", status_code=303)
    query = urlencode(
        {
            "id_token_hint": id_token,
            "client_id": request.app.state.settings.oidc_client_id,
            "post_logout_redirect_uri": _console_url(request, "/sign-in"),
        }
    )
    separator = "&" if "?" in endpoint else "?"
    return RedirectResponse(f"{endpoint}{separator}{query}", status_code=303)


async def switch_language(request: Request) -> Response:
    """Remember the chosen language in the session and go back."""
    form = await request.form()
    lang = str(form.get("lang", ""))
    if lang in LANGUAGES:
        request.session[LANG_KEY] = lang
    return RedirectResponse(safe_next(str(form.get(NEXT_KEY, ""))), status_code=303)


ROUTES: list[BaseRoute] = [
    Route("/", home, methods=["GET"], name="home"),
    Route("/sign-in", sign_in_page, methods=["GET"], name="sign_in"),
    Route("/sign-in/dev", dev_sign_in, methods=["POST"], name="dev_sign_in"),
    Route("/sign-in/oidc", oidc_start, methods=["GET"], name="oidc_start"),
    Route("/oidc/callback", oidc_callback, methods=["GET"], name="oidc_callback"),
    Route("/sign-out", sign_out_now, methods=["POST"], name="sign_out"),
    Route("/language", switch_language, methods=["POST"], name="language"),
]
