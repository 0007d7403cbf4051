"""Signing out of the console: a kept copy of the old cookie no longer signs anyone in, and
after an OIDC sign-in the provider's own session is ended too (RP-initiated logout).

The console runs in-process; the identity provider is the local fake of tests/console_idp.py.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from xiezuo.staffing.v1 import registry_pb2

from services.console import session as session_module
from services.console.app import SESSION_COOKIE, build_app
from services.console.session import SignOuts
from services.console.settings import ConsoleSettings
from tests.console_forms import csrf_token, dev_sign_in
from tests.console_idp import CLIENT_ID, FakeIdp, running_idp
from tests.integration.test_console_sign_in import (
    LEADER_CLAIMS,
    _oidc_settings,
    _platform,
    _through_the_provider,
)


class Registry:
    """The start page's one call (the zones' names)."""

    async def ListZones(self, request: Any, metadata: Any, **_: Any) -> Any:
        return registry_pb2.ListZonesResponse()


def _client(app: Starlette) -> TestClient:
    # Not entered as a context manager: the lifespan would dial the services and Kafka.
    app.state.stubs = types.SimpleNamespace(registry=Registry())
    return TestClient(app)


def _sign_out(client: TestClient) -> httpx.Response:
    token = csrf_token(client.get("/").text)
    return client.post("/sign-out", data={"csrf_token": token}, follow_redirects=False)


def _replayed(client: TestClient, cookie: str) -> httpx.Response:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    return client.get("/", follow_redirects=False)


@pytest.fixture
def dev_client(tmp_path: Path) -> Iterator[TestClient]:
    yield _client(build_app(ConsoleSettings(), _platform(tmp_path)))


def test_the_cookie_kept_from_before_sign_out_no_longer_signs_in(dev_client: TestClient) -> None:
    dev_sign_in(dev_client, "p-004")
    kept = dev_client.cookies[SESSION_COOKIE]
    assert _replayed(dev_client, kept).status_code == 200  # the copy works while signed in
    signed_out = _sign_out(dev_client)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/sign-in"
    replay = _replayed(dev_client, kept)
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/sign-in?next=")
    # Signing in again is a new session: it is not caught by the old one's sign-out.
    dev_sign_in(dev_client, "p-004")
    assert dev_client.get("/", follow_redirects=False).status_code == 200


def test_a_session_ends_with_its_token_without_asking_a_service(
    dev_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev_sign_in(dev_client, "p-004")
    ttl = dev_client.app.state.settings.token_ttl_seconds  # type: ignore[attr-defined]
    later = session_module.time.time() + ttl + 1
    monkeypatch.setattr(session_module, "time", types.SimpleNamespace(time=lambda: later))
    reply = dev_client.get("/", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].startswith("/sign-in?")


def test_sign_outs_are_forgotten_once_their_tokens_have_expired() -> None:
    now = [1000.0]
    sign_outs = SignOuts(clock=lambda: now[0])
    sign_outs.end("a", 1500.0)
    sign_outs.end("b", 900.0)  # already expired: nothing to remember
    assert sign_outs.ended("a") and not sign_outs.ended("b") and not sign_outs.ended("c")
    now[0] = 1600.0
    sign_outs.end("c", 2000.0)
    assert not sign_outs.ended("a") and sign_outs.ended("c")
    assert set(sign_outs._ended) == {"c"}  # the expired one was dropped


def test_oidc_sign_out_ends_the_providers_session_and_the_old_cookie(tmp_path: Path) -> None:
    with running_idp(dict(LEADER_CLAIMS)) as idp:
        client = _client(build_app(_oidc_settings(tmp_path, idp), _platform(tmp_path)))
        done = _through_the_provider(client)
        assert done.status_code == 303, idp.refused
        issued = idp_id_token(idp, client)
        kept = client.cookies[SESSION_COOKIE]
        signed_out = _sign_out(client)
        assert signed_out.status_code == 303
        logout = urlsplit(signed_out.headers["location"])
        assert f"{logout.scheme}://{logout.netloc}{logout.path}" == f"{idp.issuer}/logout"
        asked = {k: v[0] for k, v in parse_qs(logout.query).items()}
        assert asked == {
            "id_token_hint": issued,
            "client_id": CLIENT_ID,
            "post_logout_redirect_uri": "http://testserver/sign-in",
        }
        assert httpx.get(signed_out.headers["location"]).status_code == 200
        assert idp.logouts[-1]["id_token_hint"] == issued
        replay = _replayed(client, kept)
        assert replay.status_code == 303 and replay.headers["location"].startswith("/sign-in?")


def test_a_provider_without_end_session_signs_out_here_only(tmp_path: Path) -> None:
    with running_idp(dict(LEADER_CLAIMS), end_session=False) as idp:
        client = _client(build_app(_oidc_settings(tmp_path, idp), _platform(tmp_path)))
        _through_the_provider(client)
        signed_out = _sign_out(client)
        assert signed_out.headers["location"] == "/sign-in" and idp.logouts == []


def idp_id_token(idp: FakeIdp, client: TestClient) -> str:
    """The ID token the console keeps for the logout hint (the one the provider issued)."""
    from tests.integration.test_console_sign_in import _session

    kept = _session(client).get("id_token")
    assert isinstance(kept, str) and kept.count(".") == 2
    return kept
