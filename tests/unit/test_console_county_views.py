"""The county pages' view helpers: names beside ids, plan against actual laid out by quarter,
the way from a score's parts to its cases, exports, and what an operator reads of a record."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from google.protobuf.message import Message
from xiezuo.assessment.v1 import assessment_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2
from xiezuo.staffing.v1 import training_pb2

from services.console.county.reads import CountyReads
from services.console.county.views import (
    attendance_rows,
    board_csv,
    cases_behind,
    component_rows,
    dead_letter_rows,
    download_name,
    kpi_parts,
    letter_rows,
    neighbours,
    period_or,
    plan_csv,
    plan_lines,
    quarter_days,
    ranked_rows,
    status_counts,
)
from services.runtime.deadletters import DeadLetter


def _entry(subject: str, rank: int, name: str = "", tier: int = pb.TIER_MIDDLE) -> pb.RankingEntry:
    return pb.RankingEntry(
        subject_id=subject,
        zone_ids=[subject],
        total=80.0 - rank,
        rank=rank,
        tier=tier,  # type: ignore[arg-type]
        name=name,
        four_forms=pb.FourForms(people=3, form_1=2, form_2=1),
    )


def test_zones_carry_names_from_assessment_then_the_registry_else_their_id() -> None:
    rows = ranked_rows(
        [_entry("z-1", 1, "第一协作区", pb.TIER_TOP), _entry("z-2", 2), _entry("z-9", 3)],
        {"z-2": "第二协作区"},
    )
    assert [(r.subject_id, r.name, r.tier) for r in rows] == [
        ("z-1", "第一协作区", "top"),
        ("z-2", "第二协作区", "middle"),
        ("z-9", "z-9", "middle"),
    ]
    assert rows[1].zone_names == ("第二协作区",)
    assert rows[0].four_forms.forms == (2, 1, 0, 0)


def test_a_score_leads_to_each_case_once_in_the_order_first_named() -> None:
    card = pb.Scorecard(
        components=[
            pb.ScoreComponent(kind=pb.COMPONENT_KIND_BASE, points=60),
            pb.ScoreComponent(
                kind=pb.COMPONENT_KIND_BONUS,
                kpi="cases_filed",
                count=2,
                points=4,
                event_ids=["e1", "e2"],
                case_ids=["k-2", "k-1"],
            ),
            pb.ScoreComponent(
                kind=pb.COMPONENT_KIND_RATIO,
                kpi="clues_disposed_in_time",
                of_kpi="clues_disposed",
                event_ids=["e3", "e4", "e5"],
                case_ids=["k-1", "k-3"],
            ),
        ]
    )
    rows = component_rows(card)
    assert [(r.kind, r.event_count, r.case_ids) for r in rows] == [
        ("base", 0, ()),
        ("bonus", 2, ("k-2", "k-1")),
        ("ratio", 3, ("k-1", "k-3")),
    ]
    assert cases_behind(rows) == ["k-2", "k-1", "k-3"]


def test_plan_against_actual_is_one_line_per_zone_and_kpi_with_a_cell_per_quarter() -> None:
    def progress(quarter: int, zone: str, target: int, actual: int) -> pb.TargetProgress:
        return pb.TargetProgress(
            target=pb.PlanTarget(quarter=quarter, zone_id=zone, kpi="cases_filed", target=target),
            actual=actual,
            percent=100.0 * actual / target,
            met=actual >= target,
        )

    lines = plan_lines(
        {1: [progress(1, "z-2", 4, 5), progress(1, "z-1", 4, 1)], 3: [progress(3, "z-1", 6, 6)]},
        {"z-1": "第一协作区"},
    )
    assert [(line.zone_id, line.zone_name) for line in lines] == [
        ("z-1", "第一协作区"),
        ("z-2", "z-2"),
    ]
    z1 = lines[0].quarters
    assert sorted(z1) == [1, 3]
    assert (z1[1].actual, z1[1].target, z1[1].met) == (1, 4, False)
    assert z1[3].met
    exported = list(csv.reader(io.StringIO(plan_csv(lines, 2026, {1: "学习培训"}))))
    assert exported[1] == [
        "2026",
        "1",
        "学习培训",
        "z-1",
        "第一协作区",
        "cases_filed",
        "4",
        "1",
        "25.0",
        "no",
    ]
    assert len(exported) == 1 + 3  # a line per zone, KPI and quarter with a target


def test_the_zones_csv_has_names_beside_ids_and_the_four_forms() -> None:
    rows = ranked_rows([_entry("z-1", 1, "第一协作区")], {})
    table = list(csv.reader(io.StringIO(board_csv(rows, "2026Q3"))))
    assert table[0][:4] == ["period", "rank", "zone_id", "zone"]
    assert table[1] == [
        "2026Q3",
        "1",
        "z-1",
        "第一协作区",
        "79.00",
        "middle",
        "3",
        "2",
        "1",
        "0",
        "0",
    ]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("2026Q1", ("2025Q4", "2026Q2")),
        ("2026Q4", ("2026Q3", "2027Q1")),
        ("2026", ("2025", "2027")),
    ],
)
def test_periods_step_by_their_own_unit(period: str, expected: tuple[str, str]) -> None:
    assert neighbours(period) == expected


def test_a_period_that_is_not_one_falls_back_to_this_quarter() -> None:
    today = date(2026, 8, 15)
    assert period_or("2026Q2", today) == "2026Q2"
    assert period_or("2025", today) == "2025"
    assert period_or("<script>", today) == "2026Q3"
    assert period_or("2026Q5", today) == "2026Q3"
    assert quarter_days("2026Q4") == ("2026-10-01", "2026-12-31")
    assert quarter_days("2024Q1") == ("2024-01-01", "2024-03-31")


def test_kpi_details_and_download_names() -> None:
    assert kpi_parts("deadlines_breached.hearing") == ("deadlines_breached", "hearing")
    assert kpi_parts("cases_filed") == ("cases_filed", "")
    assert download_name("c-demo", "report", "2026Q3", suffix="csv") == "c-demo-report-2026Q3.csv"
    # An id can hold anything; the file name cannot break out of its header.
    assert download_name('c"; x', "../z", suffix="html") == "c___x-.._z.html"


def test_attendance_counts_each_status_in_its_defined_order() -> None:
    days = attendance_rows(
        [
            training_pb2.AttendanceDay(
                day="2026-07-02", status=training_pb2.ATTENDANCE_STATUS_ABSENT
            ),
            training_pb2.AttendanceDay(
                day="2026-07-01", status=training_pb2.ATTENDANCE_STATUS_PRESENT
            ),
            training_pb2.AttendanceDay(
                day="2026-07-03", status=training_pb2.ATTENDANCE_STATUS_PRESENT
            ),
        ]
    )
    assert [d.day for d in days] == ["2026-07-01", "2026-07-02", "2026-07-03"]
    assert status_counts(days) == [("present", 2), ("absent", 1)]


def test_letters_name_the_other_county_newest_first() -> None:
    def letter(letter_id: str, seconds: int) -> collaboration_pb2.Letter:
        sent = collaboration_pb2.Letter(
            letter_id=letter_id,
            counterpart_county_id="c-west",
            kind=collaboration_pb2.LETTER_KIND_VERIFY_FACT,
            state=collaboration_pb2.LETTER_STATE_SENT,
        )
        sent.requested_at.seconds = seconds
        return sent

    rows = letter_rows(
        [letter("L-1", 1_790_000_000), letter("L-2", 1_790_100_000)], {"c-west": "西县"}
    )
    assert [(r.letter_id, r.counterpart, r.kind, r.state) for r in rows] == [
        ("L-2", "西县", "verify_fact", "sent"),
        ("L-1", "西县", "verify_fact", "sent"),
    ]


def test_an_operator_reads_a_records_context_not_its_payload() -> None:
    parked = DeadLetter(
        offset=7,
        partition=0,
        event_id="ev-1",
        event_type="xiezuo.cases.case_filed.v1",
        reason="handler_failed",
        error="ValueError: bad",
        attempts="3",
        original_topic="xiezuo.cases.workflow",
        original_partition="2",
        original_offset="41",
        dead_lettered_at="2026-12-04T10:00:00Z",
        key=b"z-1",
        value=b'{"case_id": "k-1", "facts": "..."}',
        headers=(
            ("ce_id", b"ev-1"),
            ("ce_type", b"xiezuo.cases.case_filed.v1"),
            ("x-error", b".."),
        ),
    )
    (row,) = dead_letter_rows([parked])
    assert row.origin == "xiezuo.cases.workflow[2]@41"
    assert row.headers == (("ce_id", "ev-1"), ("ce_type", "xiezuo.cases.case_filed.v1"))
    assert row.payload_bytes == len(parked.value or b"")
    assert "k-1" not in repr(row)


class _Missing(Exception):
    """Stands for the console's 404 (a plan not defined for the year)."""


async def test_a_year_without_a_plan_is_shown_as_none_and_a_ranking_reads_every_page() -> None:
    asked: list[tuple[str, Message]] = []

    async def call(stub: object, method: str, message: Message) -> object:
        asked.append((method, message))
        if method == "GetPlanProgress":
            raise _Missing()
        assert isinstance(message, pb.GetRankingRequest)
        if not message.page_token:
            return pb.GetRankingResponse(
                entries=[_entry("z-1", 1)], ranked_units=2, rules_version="r1", next_page_token="p2"
            )
        return pb.GetRankingResponse(entries=[_entry("z-2", 2)], ranked_units=2, rules_version="r1")

    reads = CountyReads(call, lambda error: isinstance(error, _Missing))
    plan = await reads.plan_year("c-demo", 2026)
    assert (plan.defined, plan.progress) == (False, {})
    ranking = await reads.ranking("c-demo", pb.LEVEL_ZONE, "2026Q3")
    assert [e.subject_id for e in ranking.entries] == ["z-1", "z-2"]
    assert (ranking.ranked_units, ranking.truncated) == (2, False)
    # A failure that is not "not yours / not there" is the page's failure, not a blank part.
    failing = CountyReads(call, lambda error: False)
    with pytest.raises(_Missing):
        await failing.plan_year("c-demo", 2026)
