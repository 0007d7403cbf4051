"""Who is signed in: the session cookie's contents, read and written in one place.

The session is a signed (itsdangerous), HTTP-only, SameSite=Lax cookie set by Starlette's
SessionMiddleware; it holds the user's own platform token, which every gRPC call carries.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from services.runtime.tokens import ALL_ZONES

USER_KEY = "user"
CSRF_KEY = "csrf"
LANG_KEY = "lang"


class SignInRequired(Exception):
    """No one is signed in, or the services refused the session's token: sign in again."""


@dataclass(frozen=True)
class SignedIn:
    """The signed-in user: the claims of their token, their name, and the token itself."""

    subject: str
    name: str
    county_id: str
    roles: tuple[str, ...] = ()
    zone_ids: tuple[str, ...] = ()
    township_ids: tuple[str, ...] = ()
    token: str = field(default="", repr=False)

    def has_role(self, *roles: str) -> bool:
        """Whether the token carries any of these roles."""
        return any(role in self.roles for role in roles)

    @property
    def all_zones(self) -> bool:
        """County-level staff: the token covers every zone of the county."""
        return ALL_ZONES in self.zone_ids

    def to_session(self) -> dict[str, Any]:
        """The JSON-safe form stored in the cookie."""
        data = asdict(self)
        for key in ("roles", "zone_ids", "township_ids"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_session(cls, data: Any) -> SignedIn | None:
        """The user a cookie names, or None when it names none (or is malformed)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                subject=str(data["subject"]),
                name=str(data.get("name", "")),
                county_id=str(data["county_id"]),
                roles=tuple(str(r) for r in data.get("roles", ())),
                zone_ids=tuple(str(z) for z in data.get("zone_ids", ())),
                township_ids=tuple(str(t) for t in data.get("township_ids", ())),
                token=str(data["token"]),
            )
        except (KeyError, TypeError):
            return None


def current_user(connection: HTTPConnection) -> SignedIn | None:
    """The signed-in user of this request, if any."""
    return SignedIn.from_session(connection.session.get(USER_KEY))


def signed_in(connection: HTTPConnection) -> SignedIn:
    """The signed-in user; SignInRequired (→ the sign-in page) when there is none."""
    user = current_user(connection)
    if user is None:
        raise SignInRequired()
    return user


def sign_in(connection: HTTPConnection, user: SignedIn) -> None:
    """Start a session for user: a fresh CSRF token too (no fixation across sign-ins)."""
    lang = connection.session.get(LANG_KEY)
    connection.session.clear()
    if lang:
        connection.session[LANG_KEY] = lang
    connection.session[USER_KEY] = user.to_session()
    connection.session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out(connection: HTTPConnection) -> None:
    """End the session (the language choice stays)."""
    lang = connection.session.get(LANG_KEY)
    connection.session.clear()
    if lang:
        connection.session[LANG_KEY] = lang


def csrf_token(connection: HTTPConnection) -> str:
    """This session's CSRF token, made on first use."""
    token = connection.session.get(CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        connection.session[CSRF_KEY] = token
    return token
