"""The console's live notices: what a record becomes, and who a notice may reach."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest

from services.console.live import (
    CASE,
    LETTER,
    READINGS,
    RECTIFICATION,
    Audience,
    LiveFeed,
    Notice,
    Viewer,
    notice_of,
    sse,
)
from services.contracts.base import IntegrationEvent
from services.contracts.cases import CaseDecided, DeadlineBreached
from services.contracts.collaboration import AssistanceAnswered, LetterOverdue
from services.contracts.staffing import AssignmentDeclined, TeamAssigned, TeamMember
from services.runtime.envelope import Envelope

NOW = datetime(2026, 5, 6, 7, 8, tzinfo=UTC)


def _record(event: IntegrationEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="xiezuo/test",
        time=NOW,
        county_id=event.county_id,
        zone_id=event.zone_id,
        data=event.model_dump_json().encode(),
    )
    return envelope.headers(), envelope.data


def _notice(event: IntegrationEvent) -> Notice:
    notice = notice_of(*_record(event))
    assert notice is not None
    return notice


def test_a_deadline_breach_names_its_case_kind_and_due_date() -> None:
    notice = _notice(
        DeadlineBreached(
            county_id="c1",
            zone_id="z1",
            deadline_id="d1",
            case_id="case-1",
            kind="investigation",
            due_at=NOW,
            rule_version="r1",
        )
    )
    assert (notice.what, notice.subject_kind, notice.subject_id) == (
        "deadline_breached",
        CASE,
        "case-1",
    )
    assert notice.facts == {"kind": "investigation", "due_at": NOW.isoformat()}
    assert notice.occurred_at == NOW


def test_a_rectification_deadline_is_about_the_item_not_a_case() -> None:
    notice = _notice(
        DeadlineBreached(
            county_id="c1",
            zone_id="z1",
            deadline_id="d1",
            case_id="item-1",
            kind="rectification",
            due_at=NOW,
            rule_version="r1",
            record_type="rectification",
        )
    )
    assert (notice.subject_kind, notice.subject_id) == (RECTIFICATION, "item-1")


def test_free_text_never_leaves_the_case_file() -> None:
    step = _notice(
        CaseDecided(
            county_id="c1",
            zone_id="z1",
            case_id="case-1",
            township_id="t1",
            action="approve_decision",
            from_stage="decision_proposed",
            to_stage="decided",
            actor="p-004",
            reason="举报人王某提供了新的证据",
            rule_version="r1",
            occurred_at=NOW,
            detail={"sanctions": [{"kind": "warning"}]},
        )
    )
    assert step.facts == {"action": "approve_decision", "to_stage": "decided"}
    answer = _notice(
        AssistanceAnswered(
            county_id="c1",
            zone_id="z1",
            case_id="case-1",
            letter_id="L-1",
            answered_by_county="c2",
            kind="verify_fact",
            findings="经核实，举报人所述属实",
            attachments=2,
            answered_at=NOW,
        )
    )
    assert answer.facts == {"letter_id": "L-1", "answered_by_county": "c2", "kind": "verify_fact"}
    for notice in (step, answer):
        sent = json.dumps(notice.payload(), ensure_ascii=False)
        assert "举报人" not in sent and "p-004" not in sent


def test_drawn_people_are_named_for_the_audience_but_never_sent() -> None:
    notice = _notice(
        TeamAssigned(
            county_id="c1",
            zone_id="z1",
            request_id="r1",
            case_id="case-1",
            stage="verification",
            draw_id="draw-1",
            members=[
                TeamMember(person_id="p-030", home_township_id="t2", leader=True),
                TeamMember(person_id="p-031", home_township_id="t3"),
            ],
            assigned_at=NOW,
        )
    )
    assert notice.named == frozenset({"p-030", "p-031"})
    assert "p-030" not in json.dumps(notice.payload())
    declined = _notice(
        AssignmentDeclined(
            county_id="c1",
            zone_id="z1",
            draw_id="draw-1",
            redraw_id="draw-2",
            request_id="r1",
            case_id="case-1",
            person_id="p-031",
            reason="本人回避",
            declined_at=NOW,
        )
    )
    assert declined.facts == {} and declined.named == frozenset()


def test_a_letter_notice_is_about_the_letter() -> None:
    notice = _notice(
        LetterOverdue(
            county_id="c1",
            zone_id="*",
            letter_id="L-9",
            direction="inbound",
            counterpart_county="c2",
            kind="registry_check",
            due_date=date(2026, 5, 1),
        )
    )
    assert (notice.what, notice.subject_kind, notice.subject_id) == (
        "letter_overdue",
        LETTER,
        "L-9",
    )
    assert notice.facts["due_date"] == "2026-05-01"


def test_records_that_are_not_notices_or_not_readable_are_skipped() -> None:
    headers, value = _record(
        DeadlineBreached(
            county_id="c1",
            zone_id="z1",
            deadline_id="d1",
            case_id="case-1",
            kind="disposal",
            due_at=NOW,
            rule_version="r1",
        )
    )
    assert notice_of(headers, b"{not json") is None
    assert notice_of([h for h in headers if h[0] != "ce_id"], value) is None
    other = [(n, b"xiezuo.cases.team_requested.v1" if n == "ce_type" else v) for n, v in headers]
    assert notice_of(other, value) is None


def test_every_notice_type_is_a_published_contract() -> None:
    from services.contracts.registry import EVENT_TYPES

    assert set(READINGS) <= set(EVENT_TYPES)


class CountingGate:
    """Answers from a table and counts the questions (a service's read, as the console asks)."""

    def __init__(self, allowed: set[tuple[str, str, str]], *, failing: bool = False) -> None:
        self.allowed = allowed
        self.failing = failing
        self.asked: list[tuple[str, str, str]] = []

    async def may_read(self, viewer: Viewer, kind: str, subject_id: str) -> bool:
        self.asked.append((viewer.subject, kind, subject_id))
        if self.failing:
            raise ConnectionError("cases unavailable")
        return (viewer.subject, kind, subject_id) in self.allowed


def _case_notice(
    case_id: str, *, county: str = "c1", named: frozenset[str] = frozenset()
) -> Notice:
    return Notice(
        event_id=str(uuid.uuid4()),
        what="deadline_approaching",
        county_id=county,
        zone_id="z1",
        subject_kind=CASE,
        subject_id=case_id,
        occurred_at=NOW,
        named=named,
    )


async def test_the_service_decides_and_its_answer_holds_for_a_while() -> None:
    gate = CountingGate({("p-1", CASE, "case-1")})
    clock = [0.0]
    audience = Audience(Viewer("p-1", "c1", "token"), gate, hold_seconds=30, clock=lambda: clock[0])
    assert await audience.admits(_case_notice("case-1"))
    assert not await audience.admits(_case_notice("case-2"))
    assert await audience.admits(_case_notice("case-1"))
    assert gate.asked == [("p-1", CASE, "case-1"), ("p-1", CASE, "case-2")]
    clock[0] = 31.0
    assert await audience.admits(_case_notice("case-1"))
    assert len(gate.asked) == 3


async def test_another_county_is_never_asked_and_a_named_person_is_never_refused() -> None:
    gate = CountingGate(set())
    audience = Audience(Viewer("p-1", "c1", "token"), gate)
    assert not await audience.admits(_case_notice("case-1", county="c2", named=frozenset({"p-1"})))
    assert await audience.admits(_case_notice("case-1", named=frozenset({"p-1"})))
    assert gate.asked == []


async def test_a_service_that_cannot_answer_withholds_the_notice_without_remembering() -> None:
    gate = CountingGate({("p-1", CASE, "case-1")}, failing=True)
    audience = Audience(Viewer("p-1", "c1", "token"), gate)
    assert not await audience.admits(_case_notice("case-1"))
    gate.failing = False
    assert await audience.admits(_case_notice("case-1"))


async def test_a_slow_connection_loses_its_oldest_notices_not_the_feed() -> None:
    feed = LiveFeed("127.0.0.1:1", queue_size=2)
    with feed.subscription() as slow, feed.subscription() as other:
        notices = [_case_notice(f"case-{n}") for n in range(3)]
        for notice in notices:
            feed.deliver(notice)
        assert [slow.get_nowait().subject_id for _ in range(2)] == ["case-1", "case-2"]
        assert other.qsize() == 2
    feed.deliver(_case_notice("case-9"))


def test_a_server_sent_event_is_one_json_line() -> None:
    text = sse("notice", {"text": "线索\n处置"}, event_id="e-1")
    assert text == 'event: notice\nid: e-1\ndata: {"text":"线索\\n处置"}\n\n'


@pytest.mark.parametrize("what", sorted({r.split(".")[2] for r in READINGS}))
def test_every_notice_has_words_in_both_languages(what: str) -> None:
    from services.console.locale import Catalogue

    catalogue = Catalogue.load()
    for lang in ("zh", "en"):
        assert f"live.notice.{what}" in catalogue.keys(lang), (lang, what)


def test_a_notice_is_worded_in_the_users_language_and_linked_to_its_subject() -> None:
    from services.console.locale import Catalogue
    from services.console.pages.live import wording

    catalogue = Catalogue.load()
    notice = _notice(
        DeadlineBreached(
            county_id="c1",
            zone_id="z1",
            deadline_id="d1",
            case_id="case-1",
            kind="disposal",
            due_at=NOW,
            rule_version="r1",
        )
    )
    chinese = wording(catalogue.translator("zh"))(notice)
    assert chinese["text"] == "case-1：线索处置时限已于 2026-05-06 超期"
    assert (chinese["href"], chinese["tone"]) == ("/cases/case-1", "warning")
    english = wording(catalogue.translator("en"))(notice)
    assert english["text"] == "case-1: the disposal time limit was breached on 2026-05-06"
