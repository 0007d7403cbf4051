"""The county leader in real Chromium: the county at a glance, and a score followed to the
case files behind it (ranking → explain → a case listed → its case file opens)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Screenshot, SignIn
from tests.browser.platform import Platform

COUNTY_LEADER = "p-003"  # 邵晓东, county leadership in deploy/demo/county.yaml
STAFF_TRIED = 8


def _quarters(platform: Platform) -> list[str]:
    """The demo year's quarters, the latest first (the likeliest to have cases behind them)."""
    quarters = platform.demo.get("quarters") or [f"2026Q{q}" for q in (1, 2, 3, 4)]
    return list(reversed(quarters))


def test_the_county_leader_follows_a_zones_score_to_a_case_file(
    page: Page, platform: Platform, sign_in_as: SignIn, screenshot: Screenshot
) -> None:
    sign_in_as(page, COUNTY_LEADER)
    found = None
    for quarter in _quarters(platform):
        page.goto(f"/ranking?level=zone&period={quarter}")
        table = page.get_by_test_id("ranking")
        expect(table).to_be_visible()
        # Zones by name beside their ids, never an id alone.
        expect(table).to_contain_text("第一协作区")
        explain_links = table.locator("a[data-testid^='explain-']")
        for index in range(explain_links.count()):
            page.goto(f"/ranking?level=zone&period={quarter}")
            link = page.get_by_test_id("ranking").locator("a[data-testid^='explain-']").nth(index)
            with page.expect_navigation():
                link.click()
            if page.get_by_test_id("case-link").count():
                found = quarter
                break
        if found:
            break
    assert found, "no zone's score in the demo year has a case behind it"
    screenshot(page, "ranking-explain-zone")
    expect(page.get_by_test_id("score-total")).to_contain_text(found)
    expect(page.get_by_test_id("components")).to_contain_text("基础分")
    case_link = page.get_by_test_id("case-link").first
    case_id = case_link.inner_text().strip()
    assert case_id
    # The same case is listed among the cases behind the score.
    expect(page.get_by_test_id("cases-behind")).to_contain_text(case_id)
    with page.expect_navigation():
        case_link.click()
    expect(page).to_have_url(re.compile(rf"/cases/{re.escape(case_id)}$"))
    expect(page.locator("h1")).to_contain_text(case_id)
    screenshot(page, "ranking-explain-case-file")


def test_a_staff_members_score_leads_to_the_cases_they_worked(
    page: Page, platform: Platform, sign_in_as: SignIn, screenshot: Screenshot
) -> None:
    sign_in_as(page, COUNTY_LEADER)
    found = False
    for quarter in _quarters(platform):
        page.goto(f"/ranking?level=person&period={quarter}")
        links = page.get_by_test_id("ranking").locator("a[data-testid^='explain-']")
        # The best-placed staff are the likeliest to have worked cases that quarter.
        targets = [
            links.nth(i).get_attribute("href") for i in range(min(STAFF_TRIED, links.count()))
        ]
        for target in targets:
            assert target
            page.goto(target)
            if page.get_by_test_id("case-link").count():
                found = True
                break
        if found:
            break
    assert found, "no staff member's score in the demo year has a case behind it"
    # A person's name beside their id, as for zones.
    expect(page.locator("h1 .id")).to_have_text(re.compile(r"^p-\d+$"))
    screenshot(page, "ranking-explain-person")
    case_id = page.get_by_test_id("case-link").first.inner_text().strip()
    with page.expect_navigation():
        page.get_by_test_id("case-link").first.click()
    expect(page.locator("h1")).to_contain_text(case_id)


def test_the_county_pages_render_for_the_county_leader(
    page: Page, platform: Platform, sign_in_as: SignIn, screenshot: Screenshot
) -> None:
    sign_in_as(page, COUNTY_LEADER)
    quarter = platform.demo.get("quarter") or _quarters(platform)[0]

    page.goto(f"/county?period={quarter}")
    zones = page.get_by_test_id("county-zones")
    for name in (platform.demo.get("zone_names") or {"z-1": "第一协作区"}).values():
        expect(zones).to_contain_text(name)
    expect(page.get_by_test_id("county-plan")).to_be_visible()
    screenshot(page, "county-board")
    # The city commission's export: the zones as CSV with their names.
    with page.expect_download() as download:
        page.get_by_role("link", name="各协作区对比（CSV）").click()
    exported = download.value.path().read_text(encoding="utf-8-sig")
    assert exported.startswith("period,rank,zone_id,zone,")
    assert "第一协作区" in exported

    page.goto(f"/ranking?level=zone&period={quarter}")
    screenshot(page, "ranking")

    page.goto("/training?zone=z-2")
    expect(page.get_by_test_id("training-people")).to_contain_text("阎敏")
    screenshot(page, "training")
    with page.expect_navigation():
        page.get_by_role("link", name="阎敏").click()
    expect(page.locator("h1")).to_contain_text("阎敏")
    expect(page.locator("main")).to_contain_text("培训记录")
    screenshot(page, "training-person")

    page.goto("/plans")
    expect(page.get_by_test_id("plan-targets")).to_be_visible()
    screenshot(page, "plans")
    campaign = (platform.demo.get("office") or {}).get("campaign", "camp-2026-rural-funds")
    page.goto("/campaigns")
    page.get_by_label("专项监督编号").fill(campaign)
    with page.expect_navigation():
        page.get_by_role("button", name="查看").click()
    expect(page.locator("main")).to_contain_text(campaign)
    screenshot(page, "campaign")

    page.goto("/letters")
    screenshot(page, "letters")
    sent = (platform.demo.get("letters") or {}).get("letter_ids") or []
    if sent:
        expect(page.get_by_test_id("letters")).to_contain_text(sent[0])
        page.goto(f"/letters/{sent[0]}")
        expect(page.get_by_test_id("letter")).to_be_visible()
        screenshot(page, "letter")

    # Dead letters are for operators: the county leader is refused, not shown them.
    response = page.goto("/dead-letters")
    assert response is not None and response.status == 403
