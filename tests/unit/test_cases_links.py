"""Domain rules of clue links and joint cases."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from services.cases.domain.casefile import BadCommand, NotNow, invariant_violations, new_case_file
from services.cases.domain.clue import ClueStatus, clue_status
from services.cases.domain.links import (
    check_related,
    excluded_townships,
    joint_townships,
    related_link_key,
    report_link_key,
    supersede,
)
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.store import codec

FRESH = new_case_file("c2", "village", DEFAULT_RULES)


@pytest.mark.parametrize(
    "stage", ["registered", "disposal_proposed", "inquiry", "verification", "stored_pending"]
)
def test_an_unfiled_open_clue_closes_into_the_surviving_one(stage: str) -> None:
    transition = supersede(replace(FRESH, stage=stage, clock="disposal"), "c1")
    assert transition is not None
    after = transition.after
    assert (after.stage, after.duplicate_of, after.clock, after.team_request_id) == (
        "closed",
        "c1",
        "",
        "",
    )
    assert transition.detail == {"duplicate_of": "c1", "clock_ended": "disposal"}
    assert invariant_violations(after, DEFAULT_RULES) == []


@pytest.mark.parametrize(
    "file",
    [
        replace(FRESH, stage="investigation", filed=True),
        replace(FRESH, stage="closed"),
        replace(FRESH, stage="closed", duplicate_of="c0"),
    ],
)
def test_a_filed_or_closed_clue_keeps_its_own_record(file: object) -> None:
    assert supersede(file, "c1") is None  # type: ignore[arg-type]


def test_link_keys_make_each_link_unique() -> None:
    assert related_link_key("a", "b") == related_link_key("b", "a")
    assert report_link_key("c1", "r1") != report_link_key("c2", "r1")


@pytest.mark.parametrize(
    ("other", "reason", "field"),
    [("", "why", "related_case_id"), ("c1", "why", "related_case_id"), ("c2", " ", "reason")],
)
def test_a_related_link_needs_another_clue_and_a_reason(
    other: str, reason: str, field: str
) -> None:
    with pytest.raises(BadCommand) as refused:
        check_related("c1", other, reason)
    assert refused.value.field == field


def test_a_joint_case_adds_other_townships_and_every_one_is_excluded() -> None:
    townships = joint_townships(FRESH, "t1", ["t3", " t2 ", "t1", "t3"])
    assert townships == ("t2", "t3")
    joint = replace(FRESH, joint_townships=townships)
    assert joint_townships(joint, "t1", ["t4"]) == ("t2", "t3", "t4")
    assert excluded_townships("t1", joint) == ["t1", "t2", "t3"]
    assert excluded_townships("t1", FRESH) == ["t1"]
    with pytest.raises(BadCommand):
        joint_townships(FRESH, "t1", ["t1", ""])
    with pytest.raises(NotNow):
        joint_townships(replace(FRESH, stage="closed"), "t1", ["t2"])


def test_the_codec_keeps_links_and_reads_files_saved_before_them() -> None:
    file = replace(FRESH, joint_townships=("t2",), duplicate_of="c1")
    assert codec.decode(codec.encode(file)) == file
    old = json.loads(codec.encode(FRESH))
    del old["joint_townships"], old["duplicate_of"]
    assert codec.decode(json.dumps(old)) == FRESH


def test_a_duplicate_clue_reads_as_linked_duplicate() -> None:
    assert clue_status("closed", duplicate=True) is ClueStatus.LINKED_DUPLICATE
    assert clue_status("closed") is ClueStatus.CLOSED
