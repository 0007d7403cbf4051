"""Signing in to the console in real Chromium: dev sign-in, the gate, CSRF, the language switch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Screenshot, SignIn
from tests.browser.platform import Platform
from tests.console_idp import CLIENT_ID, CLIENT_SECRET, running_idp

ZONE_CHIEF = "p-004"  # 史宁, chief of 第一协作区 in deploy/demo/county.yaml


def test_dev_sign_in_as_a_zone_chief_shows_their_name_roles_and_zone(
    page: Page, sign_in_as: SignIn, screenshot: Screenshot
) -> None:
    page.goto("/sign-in")
    expect(page.locator("h1")).to_have_text("登录")
    screenshot(page, "sign-in")
    sign_in_as(page, ZONE_CHIEF)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".who")).to_contain_text("史宁")
    expect(page.locator("main")).to_contain_text("协作区组长")
    expect(page.locator("main")).to_contain_text("z-1")
    screenshot(page, "home-zone-chief")


def test_without_a_session_a_page_sends_to_sign_in_and_back_after(
    page: Page, sign_in_as: SignIn
) -> None:
    page.goto("/?from=test")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2F%3Ffrom%3Dtest$"))
    with page.expect_navigation():
        page.locator(f'button[data-person="{ZONE_CHIEF}"]').click()
    expect(page).to_have_url(re.compile(r"/\?from=test$"))


def test_a_forged_or_foreign_session_cookie_is_not_a_session(
    page: Page, platform: Platform, sign_in_as: SignIn
) -> None:
    sign_in_as(page, ZONE_CHIEF)
    cookie = next(c for c in page.context.cookies() if c["name"] == "xiezuo_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # One character changed in the signed value: the signature no longer matches.
    value = cookie["value"]
    forged = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    page.context.clear_cookies()
    page.context.add_cookies([{**cookie, "value": forged}])
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_sign_out_ends_the_session(page: Page, sign_in_as: SignIn) -> None:
    sign_in_as(page, ZONE_CHIEF)
    with page.expect_navigation():
        page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def test_a_post_without_the_csrf_token_is_refused(page: Page, sign_in_as: SignIn) -> None:
    sign_in_as(page, ZONE_CHIEF)
    # The browser's own cookies, but no token: what a forged cross-site form would send.
    refused = page.request.post("/language", form={"lang": "en", "next": "/"})
    assert refused.status == 403
    wrong = page.request.post("/language", form={"lang": "en", "csrf_token": "x" * 43})
    assert wrong.status == 403
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    # Dev sign-in is a POST too: without the token nobody is signed in.
    page.context.clear_cookies()
    anonymous = page.request.post("/sign-in/dev", form={"person_id": ZONE_CHIEF}, max_redirects=0)
    assert anonymous.status == 403


def test_switching_to_english_and_back(
    page: Page, sign_in_as: SignIn, screenshot: Screenshot
) -> None:
    sign_in_as(page, ZONE_CHIEF)
    with page.expect_navigation():
        page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("main")).to_contain_text("Zone chief")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, "home-zone-chief-en")
    with page.expect_navigation():
        page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("button", name="退出")).to_be_visible()


def test_probes_answer_without_a_session_and_metrics_name_route_templates(
    page: Page, platform: Platform
) -> None:
    assert page.request.get("/healthz").status == 200
    ready = page.request.get("/readyz")
    assert ready.status == 200, ready.text()
    page.goto("/sign-in")
    # Metrics are on their own port (never behind the public Ingress), not the console's.
    assert page.request.get("/metrics", max_redirects=0).status == 303
    metrics = page.request.get(platform.console_metrics).text()
    assert 'route="/sign-in"' in metrics and "xiezuo_console_request_seconds_count" in metrics


@pytest.fixture
def oidc_console(platform: Platform) -> Iterator[str]:
    """A second console on the same platform, signing in only through a local OIDC provider.

    The provider is "localhost", the console 127.0.0.1: two sites, so the way back from the
    provider is a cross-site navigation and the session cookie must survive it (SameSite=Lax).
    """
    claims = {
        "sub": "p-001",
        "name": "林勇",
        "roles": ["county_leadership", "commission_head"],
        "county_id": "c-demo",
        "zone_ids": ["*"],
    }
    with running_idp(claims, host="localhost", interactive=True) as idp:
        secret = platform.state_dir / "oidc-test-client-secret"
        secret.write_text(CLIENT_SECRET)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XIEZUO_", "OTEL_"))}
        env.update(
            {
                f"XIEZUO_{service.upper()}_GRPC_PORT": address.rsplit(":", 1)[1]
                for service, address in platform.grpc.items()
            }
        )
        env.update(
            XIEZUO_STATE_DIR=str(platform.state_dir),
            XIEZUO_KAFKA_BOOTSTRAP=platform.kafka_bootstrap,
            XIEZUO_CONSOLE_HTTP_PORT="0",
            XIEZUO_CONSOLE_METRICS_PORT="0",
            XIEZUO_CONSOLE_DEV_SIGN_IN="false",
            XIEZUO_CONSOLE_OIDC_ISSUER=idp.issuer,
            XIEZUO_CONSOLE_OIDC_CLIENT_ID=CLIENT_ID,
            XIEZUO_CONSOLE_OIDC_CLIENT_SECRET_FILE=str(secret),
        )
        console = subprocess.Popen(
            [sys.executable, "-m", "services.console"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert console.stdout is not None
            line = console.stdout.readline()
            assert line, "the OIDC console exited before it was ready"
            yield str(json.loads(line)["ready"]["url"])
        finally:
            console.terminate()
            console.wait(timeout=30)


def test_oidc_sign_in_in_the_browser_lands_signed_in_with_a_token_the_services_take(
    page: Page, oidc_console: str
) -> None:
    page.goto(f"{oidc_console}sign-in")
    expect(page.locator("[data-person]")).to_have_count(0)
    page.get_by_role("link", name="使用县统一身份认证登录").click()
    # The provider's own page: approving there starts the way back on the provider's site.
    page.get_by_role("link", name="approve").click()
    # Through the provider (localhost) and back to the console (127.0.0.1), signed in.
    expect(page.locator(".who")).to_contain_text("林勇")
    assert page.url == oidc_console
    # The start page read the zones from staffing with the minted token: it was accepted.
    expect(page.locator("main")).to_contain_text("全县各协作区")
    expect(page.locator("main")).to_contain_text("县纪委监委领导")
