"""Console sign-in without the platform: OIDC against a local provider, dev sign-in's limits.

The console runs in-process (Starlette's test client); the identity provider is a real HTTP
server on 127.0.0.1 (tests/console_idp.py) that checks the PKCE verifier and the client's
credentials; the token the console mints is checked by the same verifier the services use.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from services.console.app import SESSION_COOKIE, build_app
from services.console.locale import Catalogue, LocaleError
from services.console.settings import ConsoleSettings
from services.runtime.settings import PlatformSettings
from services.runtime.tokens import TokenVerifier, ensure_dev_keypair
from tests.console_forms import csrf_token
from tests.console_idp import CLIENT_ID, CLIENT_SECRET, FakeIdp, running_idp

LEADER_CLAIMS = {
    "sub": "p-001",
    "preferred_name": "林勇",
    "xz_roles": ["county_leadership", "commission_head"],
    "xz_county": "c-demo",
    "xz_zones": "*",
}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _platform(tmp_path: Path) -> PlatformSettings:
    # No broker: the live feed keeps retrying in the background, which sign-in never needs.
    return PlatformSettings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{_closed_port()}")


def _oidc_settings(tmp_path: Path, idp: FakeIdp, **more: Any) -> ConsoleSettings:
    secret = tmp_path / "oidc-client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    return ConsoleSettings(
        dev_sign_in=False,
        oidc_issuer=idp.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret_file=secret,
        oidc_claim_name="preferred_name",
        oidc_claim_roles="xz_roles",
        oidc_claim_county="xz_county",
        oidc_claim_zones="xz_zones",
        **more,
    )


@pytest.fixture
def leader_idp() -> Iterator[FakeIdp]:
    with running_idp(dict(LEADER_CLAIMS)) as idp:
        yield idp


def _session(client: TestClient) -> dict[str, Any]:
    value = client.cookies.get(SESSION_COOKIE) or ""
    payload = value.split(".", 1)[0]
    decoded: dict[str, Any] = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def _through_the_provider(client: TestClient, next_path: str = "/") -> httpx.Response:
    """Start OIDC at the console, let the provider approve, and return the callback's answer."""
    started = client.get(f"/sign-in/oidc?next={next_path}", follow_redirects=False)
    assert started.status_code == 302, started.text
    approved = httpx.get(started.headers["location"], follow_redirects=False)
    assert approved.status_code == 302
    back = urlsplit(approved.headers["location"])
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_oidc_sign_in_with_pkce_mints_a_platform_token_with_the_mapped_claims(
    tmp_path: Path, leader_idp: FakeIdp
) -> None:
    platform = _platform(tmp_path)
    app = build_app(_oidc_settings(tmp_path, leader_idp), platform)
    with TestClient(app) as client:
        page = client.get("/sign-in")
        assert "/sign-in/oidc" in page.text and "data-person=" not in page.text
        started = client.get("/sign-in/oidc?next=/?x=1", follow_redirects=False)
        asked = {k: v[0] for k, v in parse_qs(urlsplit(started.headers["location"]).query).items()}
        assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
        assert asked["client_id"] == CLIENT_ID and "openid" in asked["scope"].split()
        approved = httpx.get(started.headers["location"], follow_redirects=False)
        back = urlsplit(approved.headers["location"])
        done = client.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/?x=1", leader_idp.refused
        assert leader_idp.refused == []
        home = client.get("/")
        assert home.status_code == 200 and "林勇" in home.text
    user = _session(client)["user"]
    _, public = ensure_dev_keypair(tmp_path / "keys")
    verifier = TokenVerifier(
        [public.read_bytes()], issuer=platform.token_issuer, audience=platform.token_audience
    )
    principal = verifier.verify(user["token"])
    assert principal.subject == "p-001"
    assert principal.roles == {"county_leadership", "commission_head"}
    assert principal.county_id == "c-demo" and principal.zone_ids == ("*",)


def test_a_provider_that_names_no_roles_signs_nobody_in(tmp_path: Path) -> None:
    claims = {k: v for k, v in LEADER_CLAIMS.items() if k != "xz_roles"}
    with running_idp(claims) as idp:
        app = build_app(_oidc_settings(tmp_path, idp), _platform(tmp_path))
        with TestClient(app) as client:
            done = _through_the_provider(client)
            assert done.status_code == 303 and done.headers["location"] == "/sign-in?error=oidc"
            assert "user" not in _session(client)
            assert client.get("/", follow_redirects=False).status_code == 303


def test_a_callback_with_another_state_is_refused(tmp_path: Path, leader_idp: FakeIdp) -> None:
    app = build_app(_oidc_settings(tmp_path, leader_idp), _platform(tmp_path))
    with TestClient(app) as client:
        started = client.get("/sign-in/oidc", follow_redirects=False)
        approved = httpx.get(started.headers["location"], follow_redirects=False)
        back = urlsplit(approved.headers["location"])
        code = parse_qs(back.query)["code"][0]
        # A code fixed into someone else's browser (login CSRF): the state is not this session's.
        forged = client.get(f"{back.path}?code={code}&state=forged", follow_redirects=False)
        assert forged.headers["location"] == "/sign-in?error=oidc"
        assert "user" not in _session(client)


def test_dev_sign_in_is_off_when_the_setting_is(tmp_path: Path, leader_idp: FakeIdp) -> None:
    app = build_app(_oidc_settings(tmp_path, leader_idp), _platform(tmp_path))
    with TestClient(app) as client:
        page = client.get("/sign-in")
        token = csrf_token(page.text)
        refused = client.post(
            "/sign-in/dev",
            data={"person_id": "p-004", "csrf_token": token},
            follow_redirects=False,
        )
        assert refused.status_code == 404
        assert "user" not in _session(client)


def test_production_refuses_dev_sign_in_and_a_made_up_session_key(tmp_path: Path) -> None:
    key = tmp_path / "session.key"
    key.write_text("k" * 48)
    signing = tmp_path / "signing.pem"
    oidc: dict[str, Any] = {"oidc_issuer": "https://id.example", "oidc_client_id": "console"}
    with pytest.raises(ValidationError, match="DEV_SIGN_IN"):
        ConsoleSettings(production=True, session_secret_file=key, **oidc)
    with pytest.raises(ValidationError, match="SESSION_SECRET_FILE"):
        ConsoleSettings(production=True, dev_sign_in=False, token_signing_key_file=signing, **oidc)
    with pytest.raises(ValidationError, match="OIDC"):
        ConsoleSettings(
            production=True,
            dev_sign_in=False,
            session_secret_file=key,
            token_signing_key_file=signing,
        )
    settings = ConsoleSettings(
        production=True,
        dev_sign_in=False,
        session_secret_file=key,
        token_signing_key_file=signing,
        **oidc,
    )
    assert settings.oidc_enabled


def test_production_session_cookie_is_secure_http_only_and_lax(
    tmp_path: Path, leader_idp: FakeIdp
) -> None:
    key = tmp_path / "session.key"
    key.write_text("k" * 48)
    private, _ = ensure_dev_keypair(tmp_path / "issuer")
    settings = _oidc_settings(
        tmp_path,
        leader_idp,
        production=True,
        session_secret_file=key,
        token_signing_key_file=private,
    )
    with TestClient(build_app(settings, _platform(tmp_path)), base_url="https://testserver") as c:
        started = c.get("/sign-in/oidc", follow_redirects=False)
        cookie = started.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_two_locale_files_defining_one_key_stop_the_start(tmp_path: Path) -> None:
    (tmp_path / "a.zh.yaml").write_text("shared:\n  title: 甲\n", encoding="utf-8")
    (tmp_path / "b.zh.yaml").write_text("shared:\n  title: 乙\n", encoding="utf-8")
    with pytest.raises(LocaleError, match=r"already in a\.zh\.yaml"):
        Catalogue.load(tmp_path)


def test_every_core_string_has_both_languages() -> None:
    catalogue = Catalogue.load()
    zh = {k for k in catalogue.keys("zh") if k.startswith("core.")}
    en = {k for k in catalogue.keys("en") if k.startswith("core.")}
    assert zh == en and zh
