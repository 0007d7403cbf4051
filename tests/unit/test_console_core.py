"""Console core without the platform: CSRF on every unsafe request, redirects kept in-site."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from services.console.app import build_app
from services.console.settings import ConsoleSettings
from services.console.signin import dev_directory
from services.console.web import NavLink, safe_next
from services.demo.county import DEMO_COUNTY_FILE
from services.runtime.settings import PlatformSettings
from tests.console_forms import csrf_token


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    platform = PlatformSettings(state_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{_closed_port()}")
    with TestClient(build_app(ConsoleSettings(), platform)) as test_client:
        yield test_client


def _token(client: TestClient) -> str:
    return csrf_token(client.get("/sign-in").text)


def test_the_csrf_token_is_taken_from_the_htmx_header_or_the_form(client: TestClient) -> None:
    token = _token(client)
    by_header = client.post(
        "/language", data={"lang": "en"}, headers={"X-CSRF-Token": token}, follow_redirects=False
    )
    assert by_header.status_code == 303
    # Multipart forms (file uploads) carry it as a field like any other form.
    multipart = client.post(
        "/language",
        data={"lang": "zh", "csrf_token": token},
        files={"attachment": ("a.txt", b"x")},
        follow_redirects=False,
    )
    assert multipart.status_code == 303
    assert '<html lang="zh-CN">' in client.get("/sign-in").text


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_an_unsafe_request_with_a_wrong_or_missing_token_is_refused(
    client: TestClient, method: str
) -> None:
    token = _token(client)
    for headers in ({}, {"X-CSRF-Token": token[:-1] + "x"}):
        refused = client.request(method, "/language", data={"lang": "en"}, headers=headers)
        assert refused.status_code == 403
    # A JSON body is no way around it either.
    refused = client.request(method, "/language", json={"csrf_token": token})
    assert refused.status_code == 403
    assert '<html lang="zh-CN">' in client.get("/sign-in").text


def test_a_token_from_another_session_is_refused(client: TestClient, tmp_path: Path) -> None:
    other = _token(client)
    client.cookies.clear()
    _token(client)
    refused = client.post("/language", data={"lang": "en", "csrf_token": other})
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/cases/c-1?tab=history", "/cases/c-1?tab=history"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\tevil", "/"),
        ("evil", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirects_after_sign_in_stay_in_the_console(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_a_nav_link_shows_to_holders_of_one_of_its_roles() -> None:
    chiefs = NavLink("/zones", "zone_board.nav", roles=frozenset({"zone_chief", "deputy_chief"}))
    assert chiefs.shown_to(["deputy_chief", "supervision_staff"])
    assert not chiefs.shown_to(["hearing_staff"])
    assert NavLink("/", "core.nav.home").shown_to([])


def test_dev_tokens_carry_the_roles_the_case_rules_gate_team_steps_on() -> None:
    people = {person.person_id: person for person in dev_directory(DEMO_COUNTY_FILE)}
    # 余磊, deputy chief of 第一协作区 and supervision staff: works cases as a case officer.
    deputy = people["p-010"].identity()
    assert set(deputy.roles) == {"deputy_chief", "supervision_staff", "case_officer"}
    assert deputy.zone_ids == ("z-1",)
    hearer = people["p-016"].identity()
    assert set(hearer.roles) == {"hearing_staff", "hearing_officer"}
    assert hearer.zone_ids == ("*",)
    assert people["p-004"].identity().roles == ("zone_chief",)
    # Village informants are never listed: their identity is protected.
    assert all("village_informant" not in person.roles for person in people.values())


def test_the_dev_sign_in_page_lists_people_by_zone_in_zone_order(client: TestClient) -> None:
    page = client.get("/sign-in").text
    legends = re.findall(r"<legend>([^<]+)</legend>", page)
    assert legends == [
        "第一协作区",
        "第二协作区",
        "第三协作区",
        "第四协作区",
        "第五协作区",
        "第六协作区",
        "县级",
    ]
    assert 'data-person="p-004"' in page and "史宁" in page


def test_request_metrics_name_the_route_template_even_when_the_gate_answers(
    client: TestClient,
) -> None:
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.get("/no-such-page", follow_redirects=False).status_code == 303
    client.get("/sign-in")
    exposition = generate_latest(client.app.state.registry).decode()  # type: ignore[attr-defined]
    counted = 'xiezuo_console_request_seconds_count{method="GET",route="%s",status="%s"} 1.0'
    assert counted % ("/", "303") in exposition
    assert counted % ("/sign-in", "200") in exposition
    # Nothing answers there: no id or made-up path ever becomes a label.
    assert counted % ("unmatched", "303") in exposition
    assert "no-such-page" not in exposition


def test_event_streams_are_not_timed_as_page_answers(client: TestClient) -> None:
    async def stream(request: Request) -> Response:
        return StreamingResponse(iter([": subscribed\n\n"]), media_type="text/event-stream")

    app = client.app
    app.router.routes.append(Route("/test-stream", stream))  # type: ignore[attr-defined]
    client.post("/sign-in/dev", data={"person_id": "p-004", "csrf_token": _token(client)})
    assert client.get("/test-stream").text == ": subscribed\n\n"
    assert client.get("/").status_code == 200
    exposition = generate_latest(app.state.registry).decode()  # type: ignore[attr-defined]
    assert 'route="/",status="200"' in exposition
    assert "/test-stream" not in exposition
