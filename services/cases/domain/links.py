"""Links between clues (duplicate, related) and joint cases spanning townships: pure rules."""

from __future__ import annotations

from dataclasses import replace

from services.cases.domain.casefile import BadCommand, CaseFile, NotNow, Transition

# Kinds of link on the record.
REPORT = "report"  # a repeated report joined the clue (intake's fingerprint or an officer)
DUPLICATE = "duplicate"  # an officer folded a whole clue into another one
RELATED = "related"  # two clues worked side by side (same subject, connected facts)


def report_link_key(clue_id: str, report_id: str) -> str:
    """One report joins one clue once, however often the event is delivered."""
    return f"{REPORT}:{clue_id}:{report_id}"


def related_link_key(clue_id: str, other_clue_id: str) -> str:
    """A related link has no direction: A~B and B~A are the same link."""
    first, second = sorted((clue_id, other_clue_id))
    return f"{RELATED}:{first}:{second}"


def check_related(clue_id: str, other_clue_id: str, reason: str) -> None:
    """Two distinct clues, and a reason on the record."""
    if not other_clue_id:
        raise BadCommand("is required", "related_case_id")
    if other_clue_id == clue_id:
        raise BadCommand("a clue cannot be related to itself", "related_case_id")
    if not reason.strip():
        raise BadCommand("is required", "reason")


def supersede(file: CaseFile, surviving_clue_id: str) -> Transition | None:
    """Close a duplicate clue into the surviving one, or None when it can no longer be closed.

    Only a clue not yet filed as a case and not closed is closed as a duplicate; a filed or
    closed one keeps its own record (the link is still recorded beside it). Its running clock
    ends as `met_by_link`: the obligation to dispose of the facts passes to the surviving
    clue, whose own disposal deadline keeps running unchanged.
    """
    if file.duplicate_of or file.filed or file.stage == "closed":
        return None
    after = replace(
        file,
        stage="closed",
        pending=None,
        team_requested="",
        # A late team for the superseded clue is refused: no request is open any more.
        team_request_id="",
        clock="",
        duplicate_of=surviving_clue_id,
    )
    return Transition(
        before=file,
        after=after,
        action="link_duplicate",
        event="ClueLinked",
        detail={"duplicate_of": surviving_clue_id, "clock_ended": file.clock},
    )


def joint_townships(file: CaseFile, own_township_id: str, townships: list[str]) -> tuple[str, ...]:
    """The other townships of a joint case, validated (the subject's own is implied)."""
    if file.stage == "closed" or file.duplicate_of:
        raise NotNow("a closed file cannot become a joint case")
    others = tuple(sorted({t.strip() for t in townships if t.strip()} - {own_township_id}))
    if not others:
        raise BadCommand("name at least one township besides the subject's own", "township_ids")
    if any(len(t) > 64 for t in others):
        raise BadCommand("a township id is at most 64 characters", "township_ids")
    return tuple(sorted(set(file.joint_townships) | set(others)))


def excluded_townships(own_township_id: str, file: CaseFile) -> list[str]:
    """Every township a team for the file must not come from (异地办案, joint cases too)."""
    return sorted({own_township_id, *file.joint_townships})
