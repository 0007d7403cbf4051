"""Who is signed in: the session cookie's contents, read and written in one place.

The session is a signed (itsdangerous), HTTP-only, SameSite=Lax cookie set by Starlette's
SessionMiddleware; it holds the user's own platform token, which every gRPC call carries, a
session id and the token's expiry. A session ends when its token expires or it is signed out:
a signed-out session's id is refused until its token would have expired (see SignOuts and
docs/console.md for what that covers with more than one replica).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from services.runtime.tokens import ALL_ZONES

USER_KEY = "user"
CSRF_KEY = "csrf"
LANG_KEY = "lang"
SESSION_ID_KEY = "sid"
EXPIRES_KEY = "exp"
# The provider's ID token, kept for RP-initiated logout (`id_token_hint`).
ID_TOKEN_KEY = "id_token"


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


class SignOuts:
    """Sessions signed out before their token expired, each kept only until that expiry.

    A copy of the cookie taken before sign-out names one of these ids and is refused. Held by
    the replica that served the sign-out (built by the composition root).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._ended: dict[str, float] = {}
        self._lock = threading.Lock()

    def end(self, session_id: str, expires_at: float) -> None:
        """Refuse session_id from now until expires_at (its token is useless after that)."""
        now = self._clock()
        with self._lock:
            # Forget the ones whose tokens have expired anyway: the map stays small.
            self._ended = {sid: exp for sid, exp in self._ended.items() if exp > now}
            if expires_at > now:
                self._ended[session_id] = expires_at

    def ended(self, session_id: str) -> bool:
        """Whether session_id was signed out (and its token has not expired yet)."""
        with self._lock:
            return self._ended.get(session_id, 0.0) > self._clock()


def _sign_outs(connection: HTTPConnection) -> SignOuts | None:
    found: SignOuts | None = getattr(connection.app.state, "sign_outs", None)
    return found


def token_expiry(token: str) -> float:
    """The `exp` of one of our own platform tokens (minted by this console; 0 if unreadable)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return 0.0


def current_user(connection: HTTPConnection) -> SignedIn | None:
    """The signed-in user of this request, if any: not after the token expired or sign-out."""
    session = connection.session
    user = SignedIn.from_session(session.get(USER_KEY))
    if user is None:
        return None
    session_id, expires_at = session.get(SESSION_ID_KEY), session.get(EXPIRES_KEY)
    if not isinstance(session_id, str) or not isinstance(expires_at, int | float):
        return None
    if expires_at <= time.time():
        return None
    sign_outs = _sign_outs(connection)
    if sign_outs is not None and sign_outs.ended(session_id):
        return None
    return user


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
    connection.session[SESSION_ID_KEY] = secrets.token_urlsafe(18)
    connection.session[EXPIRES_KEY] = token_expiry(user.token)


def sign_out(connection: HTTPConnection) -> None:
    """End the session (the language choice stays); a kept copy of its cookie is refused."""
    session_id, expires_at = (
        connection.session.get(SESSION_ID_KEY),
        connection.session.get(EXPIRES_KEY),
    )
    sign_outs = _sign_outs(connection)
    if (
        sign_outs is not None
        and isinstance(session_id, str)
        and isinstance(expires_at, int | float)
    ):
        sign_outs.end(session_id, float(expires_at))
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
