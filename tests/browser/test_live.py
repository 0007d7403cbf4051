"""Live notices in real Chromium: a deadline notice on Kafka appears without a reload for the
chief of the case's zone, and never for the chief of another zone.

The notices are DeadlineApproaching records published straight to the platform's deadlines
topic (no service consumes that type, so nothing else of the shared platform changes).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, Page, ViewportSize, expect

from services.contracts.cases import DeadlineApproaching
from services.runtime.envelope import Envelope
from tests.browser.conftest import Screenshot, SignIn
from tests.browser.platform import COUNTY_ID, Platform

CHIEFS = {"z-1": "p-004", "z-2": "p-005"}  # the zone chiefs in deploy/demo/county.yaml


@pytest.fixture
def second_page(browser: Browser, platform: Platform) -> Iterator[Page]:
    """Another person's browser (own cookies) beside `page`."""
    context = browser.new_context(
        base_url=platform.console_url,
        viewport=ViewportSize(width=1280, height=900),
        locale="zh-CN",
    )
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _demo_case(platform: Platform, zone: str) -> str:
    """A clue or case of the demo year in `zone`."""
    cases = json.loads(Path(str(platform.demo["cases"])).read_text(encoding="utf-8"))
    return str(next(case["clue_id"] for case in cases if case["zone_id"] == zone))


def _publish_deadline(platform: Platform, case_id: str, zone: str) -> None:
    event = DeadlineApproaching(
        county_id=COUNTY_ID,
        zone_id=zone,
        deadline_id=f"browser-{uuid.uuid4().hex[:8]}",
        case_id=case_id,
        kind="disposal",
        due_at=datetime.now(UTC) + timedelta(days=3),
        rule_version="cn-default-2026.1",
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/cases",
        time=datetime.now(UTC),
        county_id=COUNTY_ID,
        zone_id=zone,
        data=event.model_dump_json().encode(),
        subject=case_id,
    )

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                event.topic,
                envelope.data,
                key=event.partition_key().encode(),
                headers=envelope.headers(),
            )
        finally:
            await producer.stop()

    # Playwright's sync API owns this thread's event loop: publish from another thread.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, send()).result(timeout=60)


def test_a_deadline_notice_appears_live_for_its_zone_only(
    page: Page,
    second_page: Page,
    platform: Platform,
    sign_in_as: SignIn,
    screenshot: Screenshot,
) -> None:
    zone_1_case, zone_2_case = _demo_case(platform, "z-1"), _demo_case(platform, "z-2")
    sign_in_as(page, CHIEFS["z-1"])
    sign_in_as(second_page, CHIEFS["z-2"])
    for each in (page, second_page):
        each.goto("/")
        expect(each.locator("#live-notices[data-live='connected']")).to_have_count(1)

    _publish_deadline(platform, zone_1_case, "z-1")
    notice = page.locator("#live-notices li").filter(has_text=zone_1_case)
    expect(notice).to_be_visible(timeout=60_000)
    expect(notice.locator("a")).to_have_attribute("href", f"/cases/{zone_1_case}")
    screenshot(page, "live-notice")

    # The other zone's chief: their own zone's notice arrives; the first one never did.
    _publish_deadline(platform, zone_2_case, "z-2")
    expect(second_page.locator("#live-notices li").filter(has_text=zone_2_case)).to_be_visible(
        timeout=60_000
    )
    expect(second_page.locator("#live-notices")).not_to_contain_text(zone_1_case)
