"""The case visibility policy: current team, zone leadership, county leadership, recusal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.cases.api.policy import authorize_case, case_list_scope
from services.cases.domain.casefile import CaseFile
from services.runtime.grpc.errors import NotFound, PermissionDenied
from services.runtime.tokens import Principal

FILE = CaseFile(
    case_id="k",
    subject_level="village",
    rule_version="v",
    stage="investigation",
    working_team=("inv",),
    hearing_team=("hear",),
    filed=True,
)


def _who(
    subject: str, *roles: str, zones: tuple[str, ...] = ("z1",), county: str = "c1"
) -> Principal:
    return Principal(subject=subject, roles=frozenset(roles), county_id=county, zone_ids=zones)


@pytest.mark.parametrize(
    ("principal", "stage", "visible"),
    [
        (_who("inv", "case_officer"), "investigation", True),
        (_who("inv", "case_officer"), "hearing", False),
        (_who("hear", "hearing_officer"), "hearing", True),
        (_who("hear", "hearing_officer"), "investigation", False),
        (_who("chief", "zone_chief"), "investigation", True),
        (_who("dep", "deputy_chief"), "hearing", True),
        (_who("chief2", "zone_chief", zones=("z2",)), "investigation", False),
        (_who("lead", "county_leadership", zones=()), "investigation", True),
        (_who("other", "case_officer", zones=("*",)), "investigation", False),
    ],
)
def test_who_sees_a_case(principal: Principal, stage: str, visible: bool) -> None:
    file = replace(FILE, stage=stage)
    if visible:
        authorize_case(principal, county_id="c1", zone_id="z1", file=file)
    else:
        with pytest.raises(PermissionDenied):
            authorize_case(principal, county_id="c1", zone_id="z1", file=file)


def test_a_recused_person_loses_access_whatever_their_role() -> None:
    file = replace(FILE, recused=("chief",))
    with pytest.raises(PermissionDenied):
        authorize_case(_who("chief", "zone_chief"), county_id="c1", zone_id="z1", file=file)


def test_another_county_does_not_learn_the_case_exists() -> None:
    with pytest.raises(NotFound):
        authorize_case(
            _who("lead", "county_leadership", county="c2"), county_id="c1", zone_id="z1", file=FILE
        )


def test_list_scope_by_role() -> None:
    assert case_list_scope(_who("l", "county_leadership"), county_id="c1").led_zones is None
    assert case_list_scope(_who("c", "zone_chief"), county_id="c1").led_zones == ["z1"]
    assert case_list_scope(_who("o", "case_officer"), county_id="c1").led_zones == []
    with pytest.raises(PermissionDenied):
        case_list_scope(_who("o", "case_officer"), county_id="c2")
