"""Web console page render time with the demo county loaded: p50/p95 per page vs 300 ms.

Signs in (the dev sign-in form, as a browser does) as a few people of the demo county, finds
every page each can reach by following the console's own links from the start page (one URL
per route template, e.g. the first case file a zone chief is shown), then fetches each page
sequentially N times over HTTP with that person's session cookie and prints the time to the
last byte: p50, p95 and max per page, against the issue's target of 300 ms. Pages are fetched
one at a time: this is the latency of one page with its gRPC calls, not a load test.

The platform: `--platform <browser-platform.json>` reuses one already running (written by
`python -m tests.browser.platform <dir>`, which the browser tests also use); otherwise one is
started in a temporary directory with `--reports` demo reports (600: the first-run demo year)
and stopped afterwards (several minutes on a shared machine).

    .venv/bin/python -m bench.console_pages --platform /tmp/xz-browser/state/browser-platform.json
    .venv/bin/python -m bench.console_pages --reports 600 --runs 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from starlette.routing import Route

from services.console.app import discover_pages

TARGET_MS = 300.0
# Who is signed in while pages are found and timed (deploy/demo/county.yaml): between them they
# reach every page a person of the demo county can.
PEOPLE = {
    "p-004": "zone chief (z-1)",
    "p-003": "county leadership",
    "p-010": "deputy chief, supervision (z-1)",
    "p-022": "intake officer",
}
# Links never timed: they change state, stream, or download rather than render a page.
SKIPPED = re.compile(r"^/(static/|events|sign-|oidc/|language)|/export/|\.(csv|json)$")
MAX_CRAWL = 150


class _Links(HTMLParser):
    """Every same-site href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if href.startswith("/") and not href.startswith("//"):
                self.hrefs.append(href.split("#", 1)[0])


@dataclass
class Page:
    """One route template, the concrete URL timed for it, and whose session fetches it."""

    template: str
    url: str
    person: str
    status: int = 0
    errors: int = 0
    seconds: list[float] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        """The page's numbers in milliseconds."""
        ms = sorted(s * 1000 for s in self.seconds)
        p95 = ms[max(0, round(0.95 * len(ms)) - 1)] if ms else 0.0
        return {
            "page": self.template,
            "url": self.url,
            "person": self.person,
            "status": self.status,
            "errors": self.errors,
            "runs": len(ms),
            "p50_ms": round(statistics.median(ms), 1) if ms else 0.0,
            "p95_ms": round(p95, 1),
            "max_ms": round(ms[-1], 1) if ms else 0.0,
            "under_target": bool(ms) and p95 < TARGET_MS,
        }


def get_templates() -> list[Route]:
    """The console's GET routes, as app.py mounts them."""
    routes, _ = discover_pages()
    return [r for r in routes if isinstance(r, Route) and "GET" in (r.methods or ())]


def template_of(path: str, routes: list[Route]) -> str | None:
    """The route template a path belongs to (None: not a page of the console)."""
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
    return template is not None and template in done and "{" in template


async def sign_in(base: str, person: str) -> httpx.AsyncClient:
    """A client holding `person`'s session cookie, signed in through the dev form."""
    client = httpx.AsyncClient(base_url=base, timeout=60.0, follow_redirects=True)
    form = await client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise SystemExit(f"no CSRF token on {base}sign-in (is the dev sign-in on?)")
    answer = await client.post(
        "/sign-in/dev",
        data={"person_id": person, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise SystemExit(f"dev sign-in as {person} answered {answer.status_code}")
    return client


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET, once more if the connection dropped (a loaded machine drops a few)."""
    try:
        return await client.get(url)
    except httpx.TransportError:
        return await client.get(url)


async def find_pages(clients: dict[str, httpx.AsyncClient]) -> list[Page]:
    """One URL per route template, found by following links from each person's start page."""
    routes = get_templates()
    found: dict[str, Page] = {}
    for person, client in clients.items():
        queue, seen = ["/"], {"/"}
        fetched = 0
        while queue and fetched < MAX_CRAWL:
            link = queue.pop(0)
            if _seen_kind(link, routes, found):
                continue  # another of a kind already found (the first case file is enough)
            try:
                response = await _get(client, link)
            except httpx.TransportError as error:
                print(f"  (skipped {link}: {type(error).__name__} twice)")
                continue
            fetched += 1
            # Where it landed: /zones takes a zone chief to their own zone's board.
            url = response.url.raw_path.decode("ascii")
            template = template_of(response.url.path, routes)
            html = response.headers.get("content-type", "").startswith("text/html")
            if template and response.status_code == 200 and html and template not in found:
                found[template] = Page(template, url, person)
            if not html:
                continue
            links = _Links()
            links.feed(response.text)
            for href in links.hrefs:
                path = urlsplit(href).path
                if href in seen or SKIPPED.search(path):
                    continue
                seen.add(href)
                next_template = template_of(path, routes)
                # Breadth first, and each template once: the first of many case files is enough.
                if next_template and (next_template not in found or "{" not in next_template):
                    queue.append(href)
    return sorted(found.values(), key=lambda page: page.template)


async def time_pages(
    pages: list[Page], clients: dict[str, httpx.AsyncClient], runs: int, warmup: int
) -> None:
    """Fetch each page `warmup` times untimed, then `runs` times timed, one at a time."""
    for page in pages:
        client = clients[page.person]
        for index in range(warmup + runs):
            started = time.perf_counter()
            try:
                response = await client.get(page.url)
            except httpx.TransportError:
                page.errors += 1
                continue
            elapsed = time.perf_counter() - started
            page.status = response.status_code
            if index >= warmup:
                page.seconds.append(elapsed)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


@contextlib.contextmanager
def platform_url(description: Path | None, reports: int) -> Iterator[tuple[str, dict[str, object]]]:
    """The console's URL and the demo's facts: a running platform's, or one started here."""
    from tests.browser.platform import Platform, start, stop

    if description is not None:
        platform = Platform.load(description)
        yield platform.console_url, platform.demo
        return
    with tempfile.TemporaryDirectory(prefix="xz-bench-console-") as directory:
        started, process = start(Path(directory), reports=reports)
        try:
            yield started.console_url, started.demo
        finally:
            stop(process)


async def run(base: str, runs: int, warmup: int) -> list[Page]:
    """Sign everyone in, find the pages, time them."""
    clients = {person: await sign_in(base, person) for person in PEOPLE}
    try:
        pages = await find_pages(clients)
        await time_pages(pages, clients, runs, warmup)
    finally:
        for client in clients.values():
            await client.aclose()
    return pages


def main() -> None:
    """Parse arguments, run, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", type=Path, help="browser-platform.json of a running one")
    parser.add_argument("--reports", type=int, default=600, help="demo reports when starting")
    parser.add_argument("--runs", type=int, default=20, help="timed fetches per page")
    parser.add_argument("--warmup", type=int, default=2, help="untimed fetches per page first")
    args = parser.parse_args()
    with platform_url(args.platform, args.reports) as (base, demo):
        print(f"console {base}; demo reports: {demo.get('reports')}; load before: {_load()}")
        pages = asyncio.run(run(base, args.runs, args.warmup))
        load_after = _load()
    rows = [page.row() for page in pages]
    width = max((len(str(row["page"])) for row in rows), default=10)
    print(f"{'page':<{width}}  status  p50 ms  p95 ms  max ms  <300ms  person")
    for row in rows:
        print(
            f"{row['page']!s:<{width}}  {row['status']!s:>6}  {row['p50_ms']:>6}  "
            f"{row['p95_ms']:>6}  {row['max_ms']:>6}  {'yes' if row['under_target'] else 'NO':>6}"
            f"  {PEOPLE[str(row['person'])]}"
        )
    print(f"load after: {load_after}")
    print(json.dumps({"target_ms": TARGET_MS, "runs": args.runs, "pages": rows}))


if __name__ == "__main__":
    main()
