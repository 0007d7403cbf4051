"""Form helpers for console tests: the CSRF field of a page and a dev sign-in."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = _CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def dev_sign_in(client: TestClient, person: str, next_path: str = "/") -> None:
    """Sign in through the dev sign-in page as one person of the demo county."""
    page = client.get("/sign-in")
    reply = client.post(
        "/sign-in/dev",
        data={"person_id": person, "next": next_path, "csrf_token": csrf_token(page.text)},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
