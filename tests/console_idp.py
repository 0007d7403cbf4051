"""A tiny OpenID Connect provider on 127.0.0.1 for the console's sign-in tests (a fake IdP).

Authorization code flow with PKCE (S256 only), RS256-signed ID tokens, JWKS, userinfo, and
RP-initiated logout (`end_session_endpoint`, unless `end_session` is off). It
approves every authorization request at once as the person `claims` describe, and records
what the client sent so a test can check it (the PKCE challenge, the client's credentials).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "xiezuo-console"
CLIENT_SECRET = "console-secret-for-tests"


@dataclass
class FakeIdp:
    """The provider's state: who signs in, the codes it issued, what clients sent."""

    claims: dict[str, Any]
    issuer: str = ""
    # True: /authorize shows a page whose link approves, as a real provider's sign-in page
    # does (the way back then starts on the provider's site); False: it approves at once.
    interactive: bool = False
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    # Whether the metadata names an end_session_endpoint; the logout requests it received.
    end_session: bool = True
    logouts: list[dict[str, str]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        logout = {"end_session_endpoint": f"{self.issuer}/logout"} if self.end_session else {}
        return {
            **logout,
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}

    def authorize(self, query: dict[str, str]) -> str:
        """Approve at once: where the browser is sent back to, with a fresh code."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        back = {"code": code, "state": query.get("state", "")}
        return f"{query['redirect_uri']}?{urlencode(back)}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        """Exchange a code: checks the client, the redirect URI and the PKCE verifier."""
        self.token_requests.append({**form, "authorization": authorization})
        asked = self.codes.pop(form.get("code", ""), None)
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if asked is None:
            return self._refuse("unknown code")
        if authorization != expected:
            return self._refuse("client authentication failed")
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return self._refuse("redirect_uri differs")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if asked.get("code_challenge_method") != "S256" or challenge != asked.get("code_challenge"):
            return self._refuse("PKCE verification failed")
        now = int(time.time())
        id_token = jwt.encode(
            {
                "iss": self.issuer,
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": asked.get("nonce", ""),
                **self.claims,
            },
            self.key,
            algorithm="RS256",
            headers={"kid": "test-key"},
        )
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def _refuse(self, why: str) -> tuple[int, dict[str, Any]]:
        self.refused.append(why)
        return 400, {"error": "invalid_grant", "error_description": why}


def _handler(idp: FakeIdp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _page(self, body: str) -> None:
            data = f"<!doctype html><title>IdP</title>{body}".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, idp.metadata())
            elif parts.path == "/jwks":
                self._json(200, idp.jwks())
            elif parts.path == "/authorize" and idp.interactive:
                self._page(f'<a href="/approve?{parts.query}">approve</a>')
            elif parts.path in ("/authorize", "/approve"):
                self.send_response(302)
                self.send_header("Location", idp.authorize(query))
                self.end_headers()
            elif parts.path == "/logout" and idp.end_session:
                idp.logouts.append(query)
                self._page("signed out")
            elif parts.path == "/userinfo":
                self._json(200, {"sub": idp.claims.get("sub", "")})
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path == "/token":
                self._json(*idp.token(form, self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not_found"})

    return Handler


@contextmanager
def running_idp(
    claims: dict[str, Any],
    *,
    host: str = "127.0.0.1",
    interactive: bool = False,
    end_session: bool = True,
) -> Iterator[FakeIdp]:
    """The provider listening on a free port of 127.0.0.1 until the block ends.

    `host` names it in its issuer URL: "localhost" makes it another site than a console on
    127.0.0.1 (a browser then applies SameSite rules on the way back, as in production).
    """
    idp = FakeIdp(claims=claims, interactive=interactive, end_session=end_session)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    idp.issuer = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
