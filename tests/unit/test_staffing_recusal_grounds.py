"""The recusal grounds file: shipped grounds with their articles, a county's own, line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from xiezuo.staffing.v1 import staffing_pb2

from services.staffing.api.servicer import recusal_ground_of
from services.staffing.domain.conflicts import ConflictRelation
from services.staffing.domain.recusal_grounds import RecusalGroundsInvalid, parse_recusal_grounds
from services.staffing.store.rule_files import (
    DEFAULT_RECUSAL_GROUNDS_FILE,
    load_recusal_grounds,
    main,
)


def test_the_shipped_grounds_cover_the_enum_and_cite_the_supervision_law() -> None:
    grounds = load_recusal_grounds()
    # Every value of the deprecated proto enum still names a ground.
    assert {relation.value for relation in ConflictRelation} <= set(grounds.by_code)
    witness = grounds.by_code["witness"]
    assert witness.label == "担任过本案的证人"
    assert "监察法（2018）第五十八条第（二）项" in witness.sources
    assert all(ground.sources for ground in grounds)


def test_a_county_adds_a_ground_and_requests_name_it() -> None:
    text = DEFAULT_RECUSAL_GROUNDS_FILE.read_text(encoding="utf-8")
    text += "  - code: former_business_partner\n    label: 曾与被调查人合伙经营\n"
    text += "    sources: [县纪委监委回避实施细则第三条]\n"
    grounds = parse_recusal_grounds(text)
    request = staffing_pb2.RequestRecusalRequest(recusal_ground_code="former_business_partner")
    assert recusal_ground_of(request, grounds) == ("former_business_partner", None)
    # The national grounds do not know it.
    _, problem = recusal_ground_of(request, load_recusal_grounds())
    assert problem is not None and problem.field == "recusal_ground_code"


def test_a_ground_removed_by_the_county_refuses_the_enum_value_too() -> None:
    text = "version: county-x\ngrounds:\n  - code: witness\n    label: 证人\n    sources: [a]\n"
    request = staffing_pb2.RequestRecusalRequest(
        ground=staffing_pb2.CONFLICT_RELATION_PRIOR_POSTING
    )
    code, problem = recusal_ground_of(request, parse_recusal_grounds(text))
    assert code == "prior_posting" and problem is not None and problem.field == "ground"


def test_every_problem_in_a_grounds_file_is_reported_with_its_line() -> None:
    text = """\
version: county-x
colour: red
grounds:
  - code: witness
    label: 证人
    sources: [监察法（2018）第五十八条]
  - code: Witness Two
    label: 证人
    sources: [x]
  - code: witness
    label: 重复
    sources: [y]
  - code: no_source
    label: 无依据
    sources: []
  - code: no_label
    sources: [z]
"""
    with pytest.raises(RecusalGroundsInvalid) as invalid:
        parse_recusal_grounds(text)
    assert invalid.value.errors == [
        "line 2: colour: unknown key (expected grounds, version)",
        "line 7: grounds[1].code: 'Witness Two' must be lower_snake_case, 1..64 characters",
        "line 10: grounds[2].code: 'witness' is listed twice",
        "line 15: grounds[3].sources: must cite at least one article or rule",
        "line 16: grounds[4].label: must be a non-empty text",
    ]


def test_the_checker_lists_grounds_and_fails_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(DEFAULT_RECUSAL_GROUNDS_FILE)]) == 0
    assert "witness: 担任过本案的证人" in capsys.readouterr().out
    bad = tmp_path / "grounds.yaml"
    bad.write_text("version: x\ngrounds: []\n", encoding="utf-8")
    assert main([str(bad)]) == 1
    assert "line 2: grounds: must list at least one ground" in capsys.readouterr().err
