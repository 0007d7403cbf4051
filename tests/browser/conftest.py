"""Browser tests: real Chromium (Debian's package) through Playwright against the console.

Fixtures every test file here uses:
- `platform`: `xiezuo up` with the demo county loaded and the web console (one per run;
  XIEZUO_BROWSER_PLATFORM=<state>/browser-platform.json reuses one started by
  `python -m tests.browser.platform <dir>`, see tests/browser/platform.py);
- `page`: a fresh browser context (own cookies) at 1280 px, base URL = the console;
- `phone_page`: the same at a phone's width;
- `sign_in_as(page, person_id)`: the dev sign-in page, as that person of the demo county;
- `screenshot(page, name)`: a full-page PNG in build/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from tests.browser.platform import REPO_ROOT, Platform, start, stop

CHROMIUM = Path(os.environ.get("XIEZUO_BROWSER_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# The first test also waits for the platform and the demo year to come up.
BROWSER_TEST_TIMEOUT = 1200

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here is a browser test on the real broker, with room for the platform start."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.kafka)
            item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT))


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The platform with the demo county and the console, for every test of tests/browser.

    Package-scoped: in `make test` it stops once the browser tests are done, instead of
    running on beside the rest of the suite.
    """
    shared = os.environ.get("XIEZUO_BROWSER_PLATFORM")
    if shared:
        yield Platform.load(Path(shared))
        return
    started, process = start(tmp_path_factory.mktemp("browser-platform"))
    try:
        yield started
    finally:
        stop(process)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (no downloaded browsers: the system's chromium is used).

    Package-scoped, like the platform: the sync driver keeps its own event loop running in this
    thread, and the asyncio tests that follow in the same session (tests/e2e, ...) cannot run
    their loop until it has stopped.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk (see .ci/run)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the browser tests."""
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()


def _page(browser: Browser, platform: Platform, viewport: ViewportSize) -> Iterator[Page]:
    context = browser.new_context(base_url=platform.console_url, viewport=viewport, locale="zh-CN")
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, platform: Platform) -> Iterator[Page]:
    """A fresh context (no session cookie) at desktop width."""
    yield from _page(browser, platform, DESKTOP)


@pytest.fixture
def phone_page(browser: Browser, platform: Platform) -> Iterator[Page]:
    """A fresh context at a phone's width."""
    yield from _page(browser, platform, PHONE)


@pytest.fixture
def sign_in_as() -> SignIn:
    """Sign the page in as a person of the demo county through the dev sign-in page."""

    def sign_in(page: Page, person_id: str) -> None:
        page.goto("/sign-in")
        with page.expect_navigation():
            page.locator(f'button[data-person="{person_id}"]').click()
        assert page.locator(f'.who[data-subject="{person_id}"]').count() == 1, page.url

    return sign_in


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """build/screenshots/ (not emptied: runs of other test files may be writing there too)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Screenshot:
    """Write a full-page screenshot as build/screenshots/<name>.png and return its path."""

    def take(page: Page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
