"""The case file's JSON: the fast encoder writes exactly what asdict-based encoding wrote."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from services.cases.domain.casefile import (
    CaseFile,
    Decision,
    Evidence,
    Proposal,
    Sanction,
    new_case_file,
)
from services.cases.domain.rules import DEFAULT_RULES
from services.cases.store import codec


def _rich_file() -> CaseFile:
    """A file using every nested kind the codec handles."""
    return CaseFile(
        case_id="clue-1",
        subject_level="township",
        rule_version="2026.1",
        stage="decision_proposed",
        pending=Proposal(
            kind="decision",
            choice="sanction",
            chain=("director", "secretary"),
            given=("director",),
            sanctions=(Sanction(track="party", kind="warning"),),
        ),
        working_team=("p-1", "p-2"),
        investigators=("p-1", "p-2"),
        evidence=(Evidence(description="账本 ledger", sha256="ab" * 32, recorded_by="p-1"),),
        extensions_used=(("investigation", 1),),
        filed=True,
        decision=Decision(
            kind="sanction", sanctions=((Sanction(track="government", kind="demerit"), 12),)
        ),
        joint_townships=("t-2",),
    )


def test_encode_writes_the_same_text_as_asdict() -> None:
    for file in (CaseFile(case_id="c", subject_level="unknown", rule_version="v"), _rich_file()):
        expected = json.dumps(asdict(file), sort_keys=True, ensure_ascii=False)
        assert codec.encode(file) == expected


def test_encoded_file_decodes_to_itself() -> None:
    file = _rich_file()
    assert codec.decode(codec.encode(file)) == file


def test_a_new_file_encoded_from_its_kind_is_the_new_file_encoded() -> None:
    for level in ("village", "township", "county", "unknown"):
        encoder = codec.NewFileEncoder(new_case_file("", level, DEFAULT_RULES))
        for case_id in ("k-1", "线索-2", 'q"uote\\', ""):
            expected = codec.encode(new_case_file(case_id, level, DEFAULT_RULES))
            assert encoder(case_id) == expected
            assert codec.decode(encoder(case_id)).case_id == case_id
    rich = _rich_file()
    assert codec.NewFileEncoder(rich)("k-9") == codec.encode(replace(rich, case_id="k-9"))


def test_the_filed_mark_is_in_the_text_of_a_filed_file_only() -> None:
    # CountCasesByStage tells filed cases from clues by this text in SQL.
    filed = _rich_file()
    # A free-text value quoting the mark is escaped in the JSON and must not look filed.
    quoting = replace(
        filed,
        filed=False,
        evidence=(Evidence(description='"filed": true', sha256="ab" * 32, recorded_by="p-1"),),
    )
    assert codec.encode(filed).count(codec.FILED_MARK) == 1
    assert codec.FILED_MARK not in codec.encode(quoting)
    assert codec.FILED_MARK not in codec.encode(replace(filed, filed=False))
