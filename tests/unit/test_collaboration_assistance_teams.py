"""Team size per letter kind (rule data) and what the team request may carry to staffing."""

from __future__ import annotations

import pytest
from xiezuo.collaboration.v1 import collaboration_pb2 as pb

from services.cli import letters as letters_cli
from services.collaboration.domain.letter_kinds import (
    LetterKind,
    LetterKindsInvalid,
    parse_letter_kinds,
)
from services.collaboration.settings import DEFAULT_LETTER_KINDS_FILE
from services.contracts.collaboration import AssistanceTeamRequested


def _kinds(verify_fact_extra: str) -> str:
    others = "".join(
        f"  {kind.value}:\n    working_days: 5\n    fields: [subject_name]\n"
        for kind in LetterKind
        if kind is not LetterKind.VERIFY_FACT
    )
    return (
        "version: 1\nkinds:\n  verify_fact:\n    working_days: 10\n"
        f"    fields: [subject_name]\n{verify_fact_extra}{others}"
    )


def test_the_rule_file_names_a_team_size_for_every_kind() -> None:
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    assert kinds.rule(LetterKind.VERIFY_FACT).team_size == 2
    assert kinds.rule(LetterKind.REGISTRY_CHECK).team_size == 1


def test_a_kind_without_a_team_size_draws_two() -> None:
    assert parse_letter_kinds(_kinds("")).rule(LetterKind.VERIFY_FACT).team_size == 2


@pytest.mark.parametrize("size", ["0", "21", "true", "two"])
def test_a_team_size_outside_1_to_20_is_refused(size: str) -> None:
    with pytest.raises(LetterKindsInvalid) as refused:
        parse_letter_kinds(_kinds(f"    team_size: {size}\n"))
    assert refused.value.errors == ["kinds.verify_fact.team_size: must be 1..20"]


def test_the_team_request_carries_only_what_the_draw_needs() -> None:
    # Minimisation: no question, fields, excerpt, asking county or case reach staffing.
    assert set(AssistanceTeamRequested.model_fields) == {
        "county_id",
        "zone_id",
        "letter_id",
        "kind",
        "subject_township_id",
        "team_size",
        "accepted_at",
    }


def test_letters_show_prints_the_team_drawn_for_the_letter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    letter = pb.Letter(
        letter_id="L-1",
        county_id="county-b",
        team_draw_id="d-1",
        team_person_ids=["p-4", "p-5"],
    )
    letters_cli._show(letter, False, "letter")
    assert "team (draw d-1): p-4, p-5" in capsys.readouterr().out
    letters_cli._show(
        pb.Letter(letter_id="L-2", team_draw_id="d-2", team_unfillable_reasons=["too few"]),
        False,
        "letter",
    )
    out = capsys.readouterr().out
    assert "team (draw d-2): none" in out and "unfillable: too few" in out
