"""Every page of the console in real Chromium: labelled, keyboard-usable, and fit for a phone.

Signed in as people of the demo county who between them reach every page, the test follows the
console's own links from the start page (one URL per route template, e.g. the first case file
shown) and checks each page it reaches:

- every form control has a label (a <label>, aria-label, aria-labelledby or title), and every
  button and link has a name;
- nothing is click-only: no onclick/hx-* handler on an element the keyboard cannot reach;
- at 1280 px and at 390 px wide the document does not scroll sideways (wide tables scroll in
  their own box); it has a title, one main heading and a language;
- a full-page screenshot at 1280 px is written to build/screenshots/page-<route>.png (and the
  first screen of the zone board and a case file to readme-*.png, as README.md shows them).

On the start page it also checks the keyboard path in: the first Tab lands on the skip link,
which is then visible and moves focus to the main content, and a focused link shows an outline.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Container
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, ViewportSize
from starlette.routing import Route

from services.console.app import discover_pages
from tests.browser.conftest import DESKTOP as DESKTOP_SIZE
from tests.browser.conftest import PHONE as PHONE_SIZE
from tests.browser.conftest import Screenshot
from tests.browser.platform import Platform

# Between them these reach every page (deploy/demo/county.yaml): a zone chief, the county's
# leadership, a deputy chief of supervision, an intake officer.
PEOPLE = ("p-004", "p-003", "p-010", "p-022")
# Links that change state, stream or download instead of rendering a page.
SKIPPED = re.compile(r"^/(static/|events|sign-|oidc/|language)|/export/|\.(csv|json)$")
MAX_PAGES_PER_PERSON = 40
# Pages whose phone rendering also goes into build/screenshots/.
PHONE_SHOTS = ("/", "/zones/{zone_id}/board", "/cases/{case_id}")
# The first screen (1280 x 900) of these, as README.md shows them (copied to docs/images/).
README_SHOTS = {"/zones/{zone_id}/board": "zone-board", "/cases/{case_id}": "case-file"}
# Not every case file links a draw (a clue without a team has none), and which file is listed
# first depends on generated ids: case files are followed until a draw page has been reached.
FOLLOWED_UNTIL = {"/cases/{case_id}": "/draws/{draw_id}"}

UNLABELLED = """
() => {
  const named = (el) => (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') || '').trim() || (el.getAttribute('title') || '').trim();
  const out = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
    if ((el.labels && el.labels.length) || named(el)) continue;
    out.push(`${el.tagName.toLowerCase()}[name=${el.getAttribute('name')}]`);
  }
  const named_controls = 'button, a[href], input[type=submit], input[type=button]';
  for (const el of document.querySelectorAll(named_controls)) {
    const text = (el.innerText || el.value || '').trim();
    if (text || named(el) || el.querySelector('img[alt]:not([alt=""])')) continue;
    out.push(`${el.tagName.toLowerCase()} without a name: ${el.outerHTML.slice(0, 80)}`);
  }
  return out;
}
"""
CLICK_ONLY = """
() => {
  const reachable = new Set(
    ['A', 'BUTTON', 'INPUT', 'SELECT', 'TEXTAREA', 'FORM', 'SUMMARY', 'DETAILS']);
  const handlers = '[onclick], [hx-get], [hx-post], [hx-put], [hx-delete]';
  const out = [];
  for (const el of document.querySelectorAll(handlers)) {
    if (reachable.has(el.tagName) || el.hasAttribute('tabindex')) continue;
    out.push(el.outerHTML.slice(0, 80));
  }
  return out;
}
"""
DESKTOP = ViewportSize(width=DESKTOP_SIZE["width"], height=DESKTOP_SIZE["height"])
PHONE = ViewportSize(width=PHONE_SIZE["width"], height=PHONE_SIZE["height"])
# Every page says what it is: a title, one main heading, the document's language.
LANDMARKS = """
() => {
  const out = [];
  if (!document.title.trim()) out.push('no <title>');
  if (document.querySelectorAll('main h1').length !== 1) out.push('not exactly one <h1> in <main>');
  if (!document.documentElement.lang) out.push('no lang on <html>');
  for (const img of document.querySelectorAll('img:not([alt])')) out.push('img without alt');
  return out;
}
"""
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def get_routes() -> list[Route]:
    """The console's GET routes, as app.py mounts them."""
    routes, _ = discover_pages()
    return [r for r in routes if isinstance(r, Route) and "GET" in (r.methods or ())]


def template_of(path: str, routes: list[Route]) -> str | None:
    """The route template of a path, or None if no page of the console serves it."""
    for route in routes:
        if route.path_regex.match(path):
            return route.path
    return None


def _seen_kind(link: str, routes: list[Route], done: Container[str]) -> bool:
    """Whether another page of this link's kind (e.g. another case file) was already taken.

    Pages without ids (the lists) are fetched once per person: another person's list links
    to pages the first one's did not (the county's leadership sees every zone's letters).
    """
    template = template_of(urlsplit(link).path, routes)
    if template is None or template not in done or "{" not in template:
        return False
    until = FOLLOWED_UNTIL.get(template)
    return until is None or until in done


def slug(template: str) -> str:
    """A file name for a route template: `/cases/{case_id}` -> `cases-case_id`."""
    return re.sub(r"[^a-z0-9_]+", "-", template.lower()).strip("-") or "home"


def same_site_links(page: Page) -> list[str]:
    """Every same-site link of the page, without fragments."""
    hrefs: list[str] = page.eval_on_selector_all(
        "a[href]", "els => els.map(el => el.getAttribute('href'))"
    )
    return [h.split("#", 1)[0] for h in hrefs if h.startswith("/") and not h.startswith("//")]


def check_keyboard_way_in(page: Page) -> list[str]:
    """The first Tab reaches a visible skip link that moves focus to the main content."""
    problems = []
    page.goto("/")
    page.keyboard.press("Tab")
    first = page.evaluate("() => document.activeElement.className")
    if "skip-link" not in str(first):
        problems.append(f"first Tab lands on {first!r}, not the skip link")
        return problems
    box = page.locator(".skip-link").bounding_box()
    if box is None or box["x"] < 0 or box["y"] < 0:
        problems.append("the focused skip link is off screen")
    page.keyboard.press("Enter")
    focused = page.evaluate("() => document.activeElement.id")
    if focused != "main":
        problems.append(f"the skip link moved focus to {focused!r}, not #main")
    page.keyboard.press("Tab")
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return s.outlineStyle + ' ' + s.outlineWidth; }"
    )
    if outline.startswith("none") or outline.endswith(" 0px"):
        problems.append(f"a focused element shows no outline ({outline})")
    return problems


def check_page(page: Page, url: str, template: str, screenshot: Screenshot) -> list[str]:
    """Labels, keyboard reach and phone width of the page just loaded; writes its screenshots."""
    problems = []
    page.wait_for_load_state("networkidle")
    full = screenshot(page, f"page-{slug(template)}")
    if template in README_SHOTS:
        page.screenshot(path=str(full.with_name(f"readme-{README_SHOTS[template]}.png")))
    problems += [f"unlabelled: {item}" for item in page.evaluate(UNLABELLED)]
    problems += [f"click-only: {item}" for item in page.evaluate(CLICK_ONLY)]
    problems += [f"structure: {item}" for item in page.evaluate(LANDMARKS)]
    if int(page.evaluate(SIDEWAYS)) > 0:
        problems.append(f"scrolls sideways at {DESKTOP['width']} px")
    page.set_viewport_size(PHONE)
    overflow = int(page.evaluate(SIDEWAYS))
    if overflow > 0:
        problems.append(f"scrolls sideways by {overflow} px at {PHONE['width']} px")
    if template in PHONE_SHOTS:
        screenshot(page, f"phone-{slug(template)}")
    return [f"{template} ({url}): {problem}" for problem in problems]


def test_every_page_is_labelled_keyboard_usable_and_fits_a_phone(
    browser: Browser, platform: Platform, screenshot: Screenshot
) -> None:
    routes = get_routes()
    checked: dict[str, str] = {}
    problems: list[str] = []
    for person in PEOPLE:
        context = browser.new_context(
            base_url=platform.console_url, viewport=DESKTOP, locale="zh-CN"
        )
        context.set_default_timeout(60_000)
        page = context.new_page()
        try:
            page.goto("/sign-in")
            if person == PEOPLE[0]:
                # Before anyone is signed in: the sign-in page itself.
                problems += check_page(page, "/sign-in", "/sign-in", screenshot)
                page.set_viewport_size(DESKTOP)
            with page.expect_navigation():
                page.locator(f'button[data-person="{person}"]').click()
            if person == PEOPLE[0]:
                problems += [f"keyboard: {p}" for p in check_keyboard_way_in(page)]
                # An error page (a case that does not exist) is a page people see too.
                page.set_viewport_size(DESKTOP)
                page.goto("/cases/no-such-case")
                problems += check_page(page, "/cases/no-such-case", "error page", screenshot)
            queue, seen, visited = deque(["/"]), {"/"}, 0
            while queue and visited < MAX_PAGES_PER_PERSON:
                link = queue.popleft()
                if _seen_kind(link, routes, checked):
                    continue  # another of a kind already checked (the first case file will do)
                page.set_viewport_size(DESKTOP)
                response = page.goto(link)
                visited += 1
                html = response is not None and "text/html" in (
                    response.headers.get("content-type", "")
                )
                if not html or response is None or response.status != 200:
                    continue
                # Where it landed: /zones takes a zone chief to their own zone's board.
                landed = urlsplit(page.url)
                url = landed.path + (f"?{landed.query}" if landed.query else "")
                template = template_of(landed.path, routes)
                if template and template not in checked:
                    checked[template] = url
                    problems += check_page(page, url, template, screenshot)
                for href in same_site_links(page):
                    path = urlsplit(href).path
                    next_template = template_of(path, routes)
                    if href in seen or SKIPPED.search(path) or next_template is None:
                        continue
                    seen.add(href)
                    if not _seen_kind(href, routes, checked):
                        queue.append(href)
        finally:
            context.close()
    # The pages a person of the demo county can reach (the dead letters are operators' only).
    expected_pages = (
        "/",
        "/work",
        "/zones/{zone_id}/board",
        "/cases/{case_id}",
        "/draws/{draw_id}",
        "/county",
        "/ranking",
        "/letters/{letter_id:str}",
        "/reports/new",
    )
    for expected in expected_pages:
        assert expected in checked, f"{expected} was never reached; checked {sorted(checked)}"
    assert not problems, "\n".join(problems)
