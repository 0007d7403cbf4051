"""`xiezuo cases advance` carries what collective decisions, reviews and 组织处理 need."""

from __future__ import annotations

from typer.testing import CliRunner

from services.cli.casework import _meeting
from services.cli.main import app


def test_a_meeting_record_is_built_from_the_options() -> None:
    record = _meeting("standing_committee:纪要7", ["l", "m2", "m3"], [], (3, 0))
    assert record is not None
    assert (record.body, record.minutes_ref, list(record.present), record.votes_for) == (
        "standing_committee",
        "纪要7",
        ["l", "m2", "m3"],
        3,
    )
    assert _meeting("", [], [], (0, 0)) is None


def test_a_malformed_meeting_is_refused_before_any_call() -> None:
    result = CliRunner().invoke(
        app, ["cases", "advance", "c", "approve_decision", "--meeting", "standing_committee"]
    )
    assert result.exit_code == 2 and "BODY:MINUTES" in result.output
