"""Casework in real Chromium against the running platform with the demo county.

A zone chief registers a report at the intake page, finds the disposal their deputy proposed
in the inbox, approves it, sees the team staffing drew, opens the case file and the draw's
replay, and looks at the zone board; the drawn leader finds the file in their own work with the
team's steps offered; an officer of another zone is refused the case.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc

from tests.browser.conftest import Screenshot, SignIn
from tests.browser.platform import Platform
from tests.integration.helpers import eventually_sync

# deploy/demo/county.yaml: 第一协作区 (z-1) is led by 史宁 (p-004) with 余磊 (p-010) as deputy;
# 邵斌 (p-048) is supervision staff of 马召镇 (t-04) in 第二协作区 (z-2).
ZONE, TOWNSHIP = "z-1", "t-01"
CHIEF, DEPUTY, OFFICER_ELSEWHERE = "p-004", "p-010", "p-048"
# Staffing draws the team after the approval (TeamRequested → TeamAssigned through Kafka).
TEAM_WITHIN = 90.0
CLUE_WITHIN = 60.0
DESKTOP = ViewportSize(width=1280, height=900)


@pytest.fixture
def cases(platform: Platform) -> Iterator[cases_pb2_grpc.CaseServiceStub]:
    """Cases over gRPC, for the deputy's proposal and for waiting on the clue."""
    with grpc.insecure_channel(platform.grpc["cases"]) as channel:
        yield cases_pb2_grpc.CaseServiceStub(channel)


def _as(platform: Platform, person: str, role: str) -> tuple[tuple[str, str], ...]:
    token = platform.token(subject=person, roles=[role], zone_ids=[ZONE])
    return (("authorization", f"Bearer {token}"),)


def _register_report(page: Page, screenshot: Screenshot, subject: str) -> str:
    """The chief registers a letter about a village cadre of 二曲镇; the clue's id."""
    page.goto("/reports/new")
    expect(page.locator("h1")).to_have_text("登记信访举报")
    # A visit asks for its own details; the form swaps them in when the channel changes.
    page.select_option("#r-channel", "visit")
    expect(page.locator("#r-visit_date")).to_be_visible()
    page.select_option("#r-channel", "letter")
    expect(page.locator("#r-visit_date")).to_have_count(0)
    page.select_option("#r-township_id", TOWNSHIP)
    page.fill("#r-subject_name", subject)
    page.fill("#r-subject_post", "村委会主任")
    page.select_option("#r-cadre_level", "village")
    page.fill("#r-categories", "poverty_alleviation_funds")
    page.fill("#r-content", "冒领扶贫补贴，涉及三户。")
    screenshot(page, "report-intake")
    # Without the subject's unit intake refuses it: the reason stands beside that input.
    with page.expect_navigation():
        page.locator("#report-form button[type=submit]").click()
    expect(page.locator("#err-subject_unit")).to_be_visible()
    expect(page.locator("#r-subject_name")).to_have_value(subject)
    page.fill("#r-subject_unit", "丰二曲村村委会")
    with page.expect_navigation():
        page.locator("#report-form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("已登记")
    clue_id = page.locator("#report-receipt a code").inner_text().strip()
    assert clue_id
    return clue_id


def _wait_for_clue(
    cases: cases_pb2_grpc.CaseServiceStub, clue_id: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    """Poll cases until intake's clue is registered there (NOT_FOUND until then)."""

    def registered() -> bool | None:
        try:
            cases.GetCase(cases_pb2.GetCaseRequest(case_id=clue_id), metadata=metadata, timeout=5)
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.NOT_FOUND:
                raise
            return None
        return True

    eventually_sync(registered, f"clue {clue_id} in cases", within=CLUE_WITHIN)


def _wait_for_team(page: Page) -> None:
    """Reload the case file until staffing's draw has put a team on it."""

    def drawn() -> bool | None:
        if page.locator("#working-team code.id").count():
            return True
        page.reload()
        return None

    eventually_sync(drawn, "a drawn team on the case file", within=TEAM_WITHIN, every=1.0)


def test_a_zone_chief_approves_a_disposal_from_the_inbox_and_follows_the_draw(
    page: Page,
    outsider_page: Page,
    platform: Platform,
    cases: cases_pb2_grpc.CaseServiceStub,
    sign_in_as: SignIn,
    screenshot: Screenshot,
) -> None:
    subject = f"测试对象{uuid.uuid4().hex[:6]}"
    sign_in_as(page, CHIEF)
    clue_id = _register_report(page, screenshot, subject)
    screenshot(page, "report-intake-done")

    chief = _as(platform, CHIEF, "zone_chief")
    _wait_for_clue(cases, clue_id, chief)
    cases.ActOnCase(
        cases_pb2.ActOnCaseRequest(
            idempotency_key=uuid.uuid4().hex,
            case_id=clue_id,
            action="propose_disposal",
            choice="preliminary_verification",
            reason="线索具体，可查",
        ),
        metadata=_as(platform, DEPUTY, "deputy_chief"),
        timeout=10,
    )

    page.goto("/work")
    item = page.locator(f'#inbox .inbox-item[data-case="{clue_id}"]')
    expect(item).to_contain_text("初步核实")
    screenshot(page, "my-work")
    with page.expect_navigation():
        item.get_by_role("link", name="审批").click()
    expect(page.locator("#act-approve_disposal")).to_be_visible()
    with page.expect_navigation():
        page.locator("#act-approve_disposal button[type=submit]").click()
    expect(page.locator("#step-done")).to_contain_text("批准处置方式")
    expect(page.locator("#case-stage")).to_have_text("初步核实")
    expect(page.locator("#act-approve_disposal")).to_have_count(0)

    _wait_for_team(page)
    members = page.locator("#working-team code.id").all_inner_texts()
    assert len(members) >= 2, members
    # Names beside ids: the chief may list the zone's people.
    expect(page.locator("#working-team .name").first).not_to_be_empty()
    expect(page.locator("#draws .draw-members")).to_contain_text(members[0])
    screenshot(page, "case-file")

    with page.expect_navigation():
        page.locator("#draws .replay-link").last.click()
    expect(page.locator("#replay-verdict")).to_contain_text("复现一致")
    expect(page.locator("#replay")).to_contain_text(members[0])
    screenshot(page, "draw-replay")

    page.goto(f"/zones/{ZONE}/board")
    expect(page.locator("h1")).to_contain_text("第一协作区")
    expect(page.locator("table.workload")).to_contain_text(members[0])
    screenshot(page, "zone-board")

    # The team's leader finds the file among their own and is offered the team's steps.
    outsider = outsider_page
    sign_in_as(outsider, members[0])
    outsider.goto("/work")
    expect(outsider.locator("table.cases")).to_contain_text(clue_id)
    outsider.goto(f"/cases/{clue_id}")
    expect(outsider.locator("#act-sign_report")).to_be_visible()
    expect(outsider.locator("#act-approve_disposal")).to_have_count(0)

    # An officer of 第二协作区, not on the team: refused, and shown nothing of the file.
    sign_in_as(outsider, OFFICER_ELSEWHERE)
    refused = outsider.goto(f"/cases/{clue_id}")
    assert refused is not None and refused.status == 403
    body = outsider.locator("main").inner_text()
    assert subject not in body and members[0] not in body
    expect(outsider.locator("form.action-form")).to_have_count(0)
    screenshot(outsider, "case-refused")


@pytest.fixture
def outsider_page(browser: Browser, platform: Platform) -> Iterator[Page]:
    """A second browser context (its own cookies) beside the chief's."""
    context = browser.new_context(base_url=platform.console_url, viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()
