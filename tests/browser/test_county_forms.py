"""In real Chromium: a zone chief records attendance for a member of their zone from the
training page, and a copy of the session cookie kept from before sign-out does not sign
anyone in again."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from services.console.app import SESSION_COOKIE
from tests.browser.conftest import Screenshot, SignIn
from tests.browser.platform import Platform

ZONE_CHIEF = "p-004"  # chief of z-1 in deploy/demo/county.yaml
SECRETARY = "p-029"  # township secretary of t-01, a township of z-1


def test_a_zone_chief_records_attendance_for_a_member_of_their_zone(
    page: Page, sign_in_as: SignIn, screenshot: Screenshot
) -> None:
    sign_in_as(page, ZONE_CHIEF)
    page.goto(f"/training/{SECRETARY}")
    form = page.get_by_test_id("attendance-form")
    expect(form).to_be_visible()
    today = datetime.now(UTC).date().isoformat()
    form.locator("#at-day").fill(today)
    form.locator("#at-status").select_option("on_assignment")
    form.locator("#at-note").fill("浏览器测试")
    with page.expect_navigation():
        form.get_by_role("button").click()
    expect(page.get_by_test_id("recorded")).to_be_visible()
    days = page.get_by_test_id("attendance-days")
    expect(days).to_contain_text(today)
    expect(days).to_contain_text("浏览器测试")
    screenshot(page, "training-recorded")


def test_a_cookie_kept_from_before_sign_out_leads_to_sign_in(
    page: Page, platform: Platform, sign_in_as: SignIn
) -> None:
    sign_in_as(page, ZONE_CHIEF)
    kept = [c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert kept
    with page.expect_navigation():
        page.get_by_role("button", name="退出").click()
    # The copy, put back as someone who took it would.
    page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": kept[0], "url": platform.console_url}]
    )
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
