"""What every page shares: rendering with the layout's context, the navigation, form checks.

A page module in `services/console/pages/` exposes `ROUTES` (Starlette routes) and optionally
`NAV` (links for the layout's navigation, each shown only to users holding one of its roles).
Handlers render with `render(request, "<page>/x.html", {...})`; templates extend `base.html`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from markupsafe import Markup, escape
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.locale import Catalogue, Translate
from services.console.session import LANG_KEY, csrf_token, current_user

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class NavLink:
    """One entry of the navigation: shown when roles is empty or the user holds one of them."""

    path: str
    label: str  # a locale key
    roles: frozenset[str] = frozenset()
    order: int = 100

    def shown_to(self, roles: Iterable[str]) -> bool:
        """Whether a user with these roles sees the link."""
        return not self.roles or bool(self.roles & set(roles))


def language(connection: HTTPConnection) -> str:
    """The user's language: their switch, else the console's default."""
    chosen = connection.session.get(LANG_KEY)
    if chosen in ("zh", "en"):
        return str(chosen)
    return str(connection.app.state.settings.default_language)


def translator(connection: HTTPConnection) -> Translate:
    """`t(key, **values)` in the request's language (for messages built in a page)."""
    catalogue: Catalogue = connection.app.state.catalogue
    return catalogue.translator(language(connection))


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """Render template with the layout's context: t, lang, user, nav, csrf_token, request."""
    templates: Jinja2Templates = request.app.state.templates
    user = current_user(request)
    nav: Sequence[NavLink] = request.app.state.nav
    token = csrf_token(request)
    field = Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')
    full = {
        "t": translator(request),
        "lang": language(request),
        "user": user,
        "nav": [link for link in nav if user is not None and link.shown_to(user.roles)],
        "csrf_token": token,
        # The hidden field every POST form needs (CsrfMiddleware refuses a form without it).
        "csrf_field": lambda: field,
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status_code)


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target inside the console only (no open redirect to another site)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    # Browsers read `/\host` as `//host`: a backslash or control character is never ours.
    if any(ch == "\\" or ord(ch) < 0x20 for ch in target):
        return default
    return target


class CsrfMiddleware:
    """Refuses (403) any state-changing request whose CSRF token does not match the session's.

    The token comes from the `csrf_token` form field (the `csrf_field()` macro) or the
    `X-CSRF-Token` header (htmx: set by base.html on every request). Checked here, for every
    route, so no page can forget it. Must sit inside SessionMiddleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        expected = scope.get("session", {}).get("csrf")
        headers = dict(scope["headers"])
        sent = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
        replay = receive
        if not sent:
            body = await _read_body(receive)
            replay = _replaying(body, receive)
            form = await _form(scope, body)
            value = form.get(CSRF_FIELD) if form is not None else None
            sent = value if isinstance(value, str) else ""
        if not expected or not sent or not secrets.compare_digest(str(expected), sent):
            response = PlainTextResponse("CSRF token missing or wrong", status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, replay, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, then: Receive | None = None) -> Receive:
    """A receive channel giving the already-read body once more, then the client's own."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _form(scope: Scope, body: bytes) -> FormData | None:
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    request = Request(scope, _replaying(body))
    return await request.form()


class SignInGate:
    """Sends anyone not signed in to the sign-in page, except on the public paths.

    Pages then only call `signed_in(request)` for the user; a service refusing the token later
    (expired) raises SignInRequired, which the app also answers with the sign-in page.
    """

    def __init__(self, app: ASGIApp, public: Sequence[str]) -> None:
        self.app = app
        self.public = tuple(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if current_user(connection) is not None:
            await self.app(scope, receive, send)
            return
        response = sign_in_redirect(connection)
        await response(scope, receive, send)

    def _is_public(self, path: str) -> bool:
        return any(path == p or (p.endswith("/") and path.startswith(p)) for p in self.public)


def sign_in_redirect(connection: HTTPConnection, *, expired: bool = False) -> Response:
    """To the sign-in page, coming back here afterwards (htmx: a full-page redirect).

    `expired`: the services refused the session's token, so the page says why. After a form
    (POST) the way back is the page the form was on, not the form's action.
    """
    if connection.scope.get("method", "GET") in ("GET", "HEAD"):
        target = connection.url.path + (f"?{connection.url.query}" if connection.url.query else "")
    else:
        referer = urlsplit(connection.headers.get("referer", ""))
        same_site = referer.netloc == connection.url.netloc
        target = safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))
        target = target if same_site else "/"
    query = {"next": target, **({"error": "expired"} if expired else {})}
    location = f"/sign-in?{urlencode(query)}"
    if connection.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)
