"""The training, attendance and letter forms through the console's app, with stand-in services.

As in test_console_county_pages: the services are small fakes of their gRPC answers; what is
checked is the console's part — the form offered only to whom the service would let act, the
request a form becomes, the service's reasons beside their inputs with the same idempotency
key on a retry, and a PERMISSION_DENIED shown as a message rather than an error page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from starlette.testclient import TestClient
from xiezuo.collaboration.v1 import collaboration_pb2 as cpb
from xiezuo.staffing.v1 import registry_pb2, staffing_pb2, training_pb2

from services.console.app import build_app
from services.console.settings import ConsoleSettings
from services.runtime.settings import PlatformSettings
from tests.console_forms import csrf_token, dev_sign_in
from tests.unit.test_console_county_pages import _invalid

LEADER, CHIEF_Z1, ASSESSOR = "p-003", "p-004", "p-027"
WORKER = "p-040"  # a staff member of zone z-1


def _denied() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        "p-004 may not record for p-040",
    )


class Staffing:
    def __init__(self) -> None:
        self.zone = "z-1"

    async def GetPerson(self, request: Any, metadata: Any, **_: Any) -> Any:
        return staffing_pb2.GetPersonResponse(
            person=staffing_pb2.Person(
                person_id=request.person_id,
                county_id="c-demo",
                zone_id=self.zone,
                name="张三",
                roles=["supervision_staff"],
            )
        )


class Training:
    """Staffing's training API; hours above 24 are refused, and so is anyone while `deny`."""

    def __init__(self) -> None:
        self.trainings: list[training_pb2.RecordTrainingRequest] = []
        self.days: list[training_pb2.RecordAttendanceRequest] = []
        self.deny = False

    async def ListTraining(self, request: Any, metadata: Any, **_: Any) -> Any:
        return training_pb2.ListTrainingResponse()

    async def ListAttendance(self, request: Any, metadata: Any, **_: Any) -> Any:
        return training_pb2.ListAttendanceResponse()

    async def RecordTraining(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.trainings.append(request)
        if self.deny:
            raise _denied()
        if request.hours > 24:
            raise _invalid("hours", "must be more than 0 and at most 24")
        return training_pb2.RecordTrainingResponse()

    async def RecordAttendance(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.days.append(request)
        if self.deny:
            raise _denied()
        if not request.status:
            raise _invalid("status", "must be set")
        return training_pb2.RecordAttendanceResponse()


class Collaboration:
    """One outbound letter awaiting approval (L-out) and one received letter (L-in)."""

    def __init__(self) -> None:
        self.approved: list[cpb.ApproveLetterRequest] = []
        self.decided: list[cpb.DecideLetterRequest] = []
        self.deny = False

    async def GetLetter(self, request: Any, metadata: Any, **_: Any) -> Any:
        inbound = request.letter_id == "L-in"
        return cpb.GetLetterResponse(
            letter=cpb.Letter(
                letter_id=request.letter_id,
                county_id="c-demo",
                counterpart_county_id="c-next",
                direction=cpb.LETTER_DIRECTION_INBOUND
                if inbound
                else cpb.LETTER_DIRECTION_OUTBOUND,
                state=cpb.LETTER_STATE_RECEIVED if inbound else cpb.LETTER_STATE_AWAITING_APPROVAL,
                kind=cpb.LETTER_KIND_VERIFY_FACT,
                question="请核实",
            )
        )

    async def GetNetwork(self, request: Any, metadata: Any, **_: Any) -> Any:
        return cpb.GetNetworkResponse(counties=[cpb.NetworkCounty(county_id="c-next", name="邻县")])

    async def ApproveLetter(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.approved.append(request)
        if self.deny:
            raise _denied()
        return cpb.ApproveLetterResponse()

    async def DecideLetter(self, request: Any, metadata: Any, **_: Any) -> Any:
        self.decided.append(request)
        if not request.accept and not request.ground:
            raise _invalid("ground", "is required when declining")
        return cpb.DecideLetterResponse()


class Registry:
    async def ListZones(self, request: Any, metadata: Any, **_: Any) -> Any:
        return registry_pb2.ListZonesResponse(
            zones=[registry_pb2.Zone(zone_id="z-1", name="第一协作区")]
        )


class Stubs:
    def __init__(self) -> None:
        self.staffing = Staffing()
        self.training = Training()
        self.collaboration = Collaboration()
        self.registry = Registry()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[TestClient, Stubs]]:
    app = build_app(ConsoleSettings(), PlatformSettings(state_dir=tmp_path))
    app.state.stubs = stubs = Stubs()
    # Not entered as a context manager: the lifespan would dial the services and Kafka.
    yield TestClient(app, base_url="http://console.test"), stubs


def _hidden(html: str, form: str, name: str) -> str:
    part = html.split(f'data-testid="{form}"', 1)[1].split("</form>", 1)[0]
    found = re.search(rf'name="{name}" value="([^"]*)"', part)
    assert found, f"no {name} in {form}"
    return found.group(1)


def _errors(html: str, name: str) -> str:
    return html.split(f'id="{name}-errors"', 1)[1].split("</ul>", 1)[0]


def test_the_record_forms_are_offered_to_the_persons_managers_only(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, CHIEF_Z1)  # chief of z-1: the person is of their zone
    assert 'data-testid="training-form"' in client.get(f"/training/{WORKER}").text
    stubs.staffing.zone = "z-2"  # not their zone: staffing would refuse, so no form
    assert 'data-testid="training-form"' not in client.get(f"/training/{WORKER}").text
    client.cookies.clear()
    dev_sign_in(client, ASSESSOR)  # reads everyone's records, records no one's
    page = client.get(f"/training/{WORKER}")
    assert page.status_code == 200 and 'data-testid="record-forms"' not in page.text
    client.cookies.clear()
    dev_sign_in(client, LEADER)  # county leadership records for any zone
    assert 'data-testid="attendance-form"' in client.get(f"/training/{WORKER}").text


def test_a_training_day_is_one_call_and_a_refusal_is_shown_beside_its_field(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, CHIEF_Z1)
    page = client.get(f"/training/{WORKER}")
    form = {
        "csrf_token": csrf_token(page.text),
        "idempotency_key": _hidden(page.text, "training-form", "idempotency_key"),
        "course": "证据规则",
        "training_type": "case_study",
        "hours": "30",
        "date": "2026-07-01",
    }
    url = f"/training/{WORKER}/training"
    refused = client.post(url, data=form, follow_redirects=False)
    assert refused.status_code == 400
    assert "at most 24" in _errors(refused.text, "hours")
    # Back as typed, with the same key: a retry cannot record the day twice.
    assert _hidden(refused.text, "training-form", "idempotency_key") == form["idempotency_key"]
    assert (
        'value="证据规则"' in refused.text and '<option value="case_study" selected' in refused.text
    )
    local = client.post(url, data={**form, "hours": "三"}, follow_redirects=False)
    assert local.status_code == 400 and "必须是数字" in _errors(local.text, "hours")
    assert len(stubs.training.trainings) == 1  # not a number: refused without a call
    done = client.post(url, data={**form, "hours": "2.5"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/training/{WORKER}?recorded=training"
    sent = stubs.training.trainings[-1]
    assert (sent.person_id, sent.course, sent.hours, sent.date) == (
        WORKER,
        "证据规则",
        2.5,
        "2026-07-01",
    )
    assert sent.training_type == training_pb2.TRAINING_TYPE_CASE_STUDY
    assert sent.idempotency_key == stubs.training.trainings[0].idempotency_key
    assert 'data-testid="recorded"' in client.get(done.headers["location"]).text


def test_attendance_is_recorded_and_staffings_refusal_is_a_clear_message(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, CHIEF_Z1)
    page = client.get(f"/training/{WORKER}")
    form = {
        "csrf_token": csrf_token(page.text),
        "idempotency_key": _hidden(page.text, "attendance-form", "idempotency_key"),
        "day": "2026-07-02",
        "status": "on_leave",
        "note": "年假",
    }
    url = f"/training/{WORKER}/attendance"
    done = client.post(url, data=form, follow_redirects=False)
    assert done.status_code == 303
    sent = stubs.training.days[-1]
    assert (sent.day, sent.status, sent.note) == (
        "2026-07-02",
        training_pb2.ATTENDANCE_STATUS_ON_LEAVE,
        "年假",
    )
    # Staffing refuses anyway (say the person moved zone meanwhile): the page says why.
    stubs.training.deny = True
    denied = client.post(url, data=form, follow_redirects=False)
    assert denied.status_code == 403
    assert 'data-testid="record-denied"' in denied.text and "未登记任何内容" in denied.text
    assert 'value="年假"' in denied.text  # what was typed is still there


def test_a_record_without_the_csrf_token_is_refused(console: tuple[TestClient, Stubs]) -> None:
    client, stubs = console
    dev_sign_in(client, CHIEF_Z1)
    reply = client.post(
        f"/training/{WORKER}/training",
        data={"course": "x", "training_type": "drill", "hours": "1", "date": "2026-07-01"},
        follow_redirects=False,
    )
    assert reply.status_code == 403 and stubs.training.trainings == []


def test_leadership_approves_a_drafted_letter_others_are_not_offered_it(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, CHIEF_Z1)
    page = client.get("/letters/L-out")
    assert page.status_code == 200 and 'data-testid="approve-form"' not in page.text
    client.cookies.clear()
    dev_sign_in(client, LEADER)
    page = client.get("/letters/L-out")
    assert 'data-testid="approve-form"' in page.text
    assert 'data-testid="decide-forms"' not in page.text  # ours to send, not to decide
    form = {
        "csrf_token": csrf_token(page.text),
        "idempotency_key": _hidden(page.text, "approve-form", "idempotency_key"),
    }
    stubs.collaboration.deny = True
    denied = client.post("/letters/L-out/approve", data=form, follow_redirects=False)
    assert denied.status_code == 403 and 'data-testid="letter-denied"' in denied.text
    stubs.collaboration.deny = False
    done = client.post("/letters/L-out/approve", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/letters/L-out?done=approve"
    first, second = stubs.collaboration.approved
    assert second.letter_id == "L-out"
    assert second.idempotency_key == first.idempotency_key == form["idempotency_key"]


def test_a_received_letter_is_declined_with_a_ground_or_accepted(
    console: tuple[TestClient, Stubs],
) -> None:
    client, stubs = console
    dev_sign_in(client, LEADER)
    page = client.get("/letters/L-in")
    assert (
        'data-testid="decide-forms"' in page.text and 'data-testid="approve-form"' not in page.text
    )
    key = _hidden(page.text, "decline-form", "idempotency_key")
    form = {"csrf_token": csrf_token(page.text), "idempotency_key": key, "decision": "decline"}
    refused = client.post("/letters/L-in/decide", data=form, follow_redirects=False)
    assert refused.status_code == 400
    assert "is required when declining" in _errors(refused.text, "ground")
    assert _hidden(refused.text, "decline-form", "idempotency_key") == key
    declined = client.post(
        "/letters/L-in/decide", data={**form, "ground": "不属本县管辖"}, follow_redirects=False
    )
    assert declined.headers["location"] == "/letters/L-in?done=decline"
    sent = stubs.collaboration.decided[-1]
    assert (sent.accept, sent.ground, sent.subject_township_id) == (False, "不属本县管辖", "")
    accepted = client.post(
        "/letters/L-in/decide",
        data={**form, "decision": "accept", "subject_township_id": "t-01", "ground": "x"},
        follow_redirects=False,
    )
    assert accepted.headers["location"] == "/letters/L-in?done=accept"
    sent = stubs.collaboration.decided[-1]
    assert (sent.accept, sent.ground, sent.subject_township_id) == (True, "", "t-01")
