"""Assessment mappers: each consumed event type → the KPI facts it counts, at its own time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.assessment.domain.facts import Fact
from services.assessment.domain.quarter import AssessmentCalendar, Quarter
from services.assessment.handlers import mappers
from services.contracts.cases import (
    CaseDecided,
    CaseTransferred,
    ClueDisposed,
    DeadlineBreached,
    RectificationClosed,
    StageChanged,
)
from services.contracts.intake import ReportForwarded
from services.contracts.registry import EVENT_TYPES
from services.contracts.staffing import DrawOverridden, RecusalRecorded, TrainingRecorded

AT = datetime(2026, 9, 30, 17, tzinfo=UTC)
CE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
SCOPE: dict[str, Any] = {"county_id": "c1", "zone_id": "z1"}
STEP: dict[str, Any] = SCOPE | {
    "case_id": "k1",
    "township_id": "t1",
    "from_stage": "a",
    "to_stage": "b",
    "actor": "p1",
    "rule_version": "r1",
    "occurred_at": AT,
}


def _counted(facts: list[Fact]) -> set[tuple[str, str | None, tuple[str, ...], datetime]]:
    return {(f.kpi, f.township_id, f.person_ids, f.occurred_at) for f in facts}


def test_every_mapped_event_type_is_a_published_contract() -> None:
    for projection in mappers.projections():
        assert EVENT_TYPES[projection.event_class.event_type] is projection.event_class


def test_case_steps_count_by_kind_in_the_quarter_they_happened() -> None:
    decided = CaseDecided(
        **STEP,
        action="approve_decision",
        detail={"decision": "party_sanction", "sanctions": [{"track": "party", "kind": "warning"}]},
    )
    assert _counted(mappers.case_decided(decided, CE_TIME)) == {
        ("decisions", "t1", (), AT),
        ("decisions.party_sanction", "t1", (), AT),
        ("people_sanctioned", "t1", (), AT),
    }
    disposed = ClueDisposed(**STEP, action="approve_disposal", detail={"way": "inquiry"})
    assert {f.kpi for f in mappers.clue_disposed(disposed, CE_TIME)} == {
        "clues_disposed",
        "clues_disposed.inquiry",
    }
    sent_back = StageChanged(**STEP, action="send_back")
    assert [f.kpi for f in mappers.stage_changed(sent_back, CE_TIME)] == ["cases_sent_back"]
    assert mappers.stage_changed(StageChanged(**STEP, action="approve_plan"), CE_TIME) == []


def test_deadlines_count_when_they_fell_due() -> None:
    breached = DeadlineBreached(
        **SCOPE, deadline_id="d1", case_id="k1", kind="investigation", due_at=AT, rule_version="r"
    )
    assert _counted(mappers.deadline_breached(breached, CE_TIME)) == {
        ("deadlines_breached", None, (), AT),
        ("deadlines_breached.investigation", None, (), AT),
    }


def test_staffing_and_intake_events() -> None:
    refused = RecusalRecorded(
        **SCOPE,
        recusal_id="r1",
        case_id="k1",
        person_id="p1",
        ground="relative",
        raised_by_role="self",
        granted=False,
        decided_by="head",
        decided_at=AT,
    )
    assert mappers.recusal_recorded(refused, CE_TIME) == []
    granted = refused.model_copy(update={"granted": True})
    assert _counted(mappers.recusal_recorded(granted, CE_TIME)) == {("recusals", None, ("p1",), AT)}
    override = DrawOverridden(
        **SCOPE,
        override_id="o1",
        overridden_draw_id="d1",
        request_id="q1",
        case_id="k1",
        member_person_ids=["p2"],
        reason="illness",
        overridden_by="chief",
        overridden_at=AT,
    )
    assert [f.kpi for f in mappers.draw_overridden(override, CE_TIME)] == ["draw_overrides"]
    forwarded = ReportForwarded(
        **SCOPE,
        report_id="r1",
        clue_id="c1",
        forward_to_body="county",
        reason="level",
        forward_due_at=AT,
        within_limit=True,
        decided_by="p1",
        decided_at=AT,
    )
    assert {f.kpi for f in mappers.report_forwarded(forwarded, CE_TIME)} == {
        "reports_forwarded",
        "reports_forwarded_in_time",
    }


def test_training_counts_whole_minutes_on_its_local_day() -> None:
    trained = TrainingRecorded(
        **SCOPE,
        record_id="tr1",
        person_id="p1",
        course="case handling",
        training_type="drill",
        hours=1.5,
        on_date=date(2026, 7, 1),
        recorded_by="clerk",
        recorded_at=CE_TIME,
    )
    facts = mappers.training_recorded(trained, CE_TIME)
    assert {(f.kpi, f.delta, f.person_ids) for f in facts} == {
        ("training_minutes", 90, ("p1",)),
        ("training_minutes.drill", 90, ("p1",)),
    }
    # 1 July is the third quarter in the county's calendar, whatever ce_time says.
    assert {AssessmentCalendar().quarter_of(f.occurred_at) for f in facts} == {Quarter(2026, 3)}


def test_rectification_closed_late_is_not_on_time() -> None:
    closed = RectificationClosed(
        **SCOPE,
        item_id="i1",
        township_id="t1",
        source="campaign",
        source_ref="funds-2026",
        owner_unit="某镇",
        due_at=AT,
        rule_version="r1",
        verified_by="chief",
        closed_at=CE_TIME,
        overdue=True,
    )
    assert [f.kpi for f in mappers.rectification_closed(closed, CE_TIME)] == [
        "rectification_closed"
    ]
    on_time = closed.model_copy(update={"overdue": False})
    assert [f.kpi for f in mappers.rectification_closed(on_time, CE_TIME)] == [
        "rectification_closed",
        "rectification_closed_in_time",
    ]


def test_a_transfer_with_its_sanctions_and_appeals_are_counted() -> None:
    expelled = [
        {"track": "party", "kind": "expulsion", "effect_months": 0},
        {"track": "government", "kind": "expulsion", "effect_months": 0},
    ]
    transfer = CaseTransferred(
        **STEP, action="approve_decision", detail={"decision": "transfer", "sanctions": expelled}
    )
    # 双开 decided with the transfer: the person is sanctioned as well as transferred.
    assert {f.kpi for f in mappers.case_transferred(transfer, CE_TIME)} == {
        "transfers_to_procuratorate",
        "people_sanctioned",
    }
    bare = CaseTransferred(**STEP, action="approve_decision", detail={"decision": "transfer"})
    assert {f.kpi for f in mappers.case_transferred(bare, CE_TIME)} == {
        "transfers_to_procuratorate"
    }
    filed = StageChanged(**STEP, action="file_appeal", detail={"filed_by": "subject"})
    changed = StageChanged(**STEP, action="decide_appeal", detail={"choice": "changed"})
    upheld = StageChanged(**STEP, action="decide_appeal", detail={"choice": "upheld"})
    assert [f.kpi for f in mappers.stage_changed(filed, CE_TIME)] == ["appeals_filed"]
    assert [f.kpi for f in mappers.stage_changed(changed, CE_TIME)] == ["appeals_changed"]
    assert mappers.stage_changed(upheld, CE_TIME) == []
