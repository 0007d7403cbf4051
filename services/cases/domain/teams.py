"""Teams on a file: assignment from staffing's draw, recusal, and the separation rules."""

from __future__ import annotations

from dataclasses import replace

from services.cases.domain.casefile import APPEAL_STAGES, HEARING_STAGES, CaseFile, NotNow

TEAM_STAGES = ("verification", "investigation", "hearing", "review")


def team_kind(stage: str) -> str:
    """Which team works a file in `stage`: working, hearing or review."""
    if stage in HEARING_STAGES:
        return "hearing"
    if stage in APPEAL_STAGES:
        return "review"
    return "working"


def excluded_from(file: CaseFile, team_stage: str) -> tuple[str, ...]:
    """People staffing must not draw for this team (异地办案 is staffing's own rule)."""
    excluded = set(file.recused)
    if team_stage in ("hearing", "review"):
        # 审理 and 复审 are done by people who did not investigate the case.
        excluded |= set(file.investigators) | set(file.working_team)
    if team_stage == "review":
        excluded |= set(file.hearers) | set(file.hearing_team)
    return tuple(sorted(excluded))


def assign_team(
    file: CaseFile, team_stage: str, members: tuple[str, ...], request_id: str = ""
) -> CaseFile:
    """The file with the drawn team in place, or NotNow if the draw breaks a rule."""
    if file.team_requested != team_stage:
        raise NotNow(f"no {team_stage} team is awaited (awaiting {file.team_requested or 'none'})")
    _check_request(file, request_id)
    if not members:
        raise NotNow("a team has at least one member")
    clash = set(members) & set(excluded_from(file, team_stage))
    if clash:
        raise NotNow(f"{sorted(clash)} may not serve on the {team_stage} team")
    team = tuple(sorted(set(members)))
    if team_stage == "hearing":
        return replace(file, hearing_team=team, team_requested="", team_request_id="")
    if team_stage == "review":
        return replace(file, review_team=team, team_requested="", team_request_id="")
    return replace(file, working_team=team, team_requested="", team_request_id="")


def _check_request(file: CaseFile, request_id: str) -> None:
    # A late answer to an earlier request of the same stage (e.g. one superseded after a
    # recusal) must not put a stale team on the file.
    if request_id and file.team_request_id and request_id != file.team_request_id:
        raise NotNow(f"request {request_id} is not the open request {file.team_request_id}")


def team_unfillable(file: CaseFile, team_stage: str, request_id: str = "") -> CaseFile:
    """Staffing could not fill the request: nothing is awaited until someone asks again."""
    if file.team_requested != team_stage:
        raise NotNow(f"no {team_stage} team is awaited")
    _check_request(file, request_id)
    return replace(file, team_requested="", team_request_id="")


def recuse(file: CaseFile, person_id: str) -> tuple[CaseFile, str]:
    """The file without the recused person, and the team to request again ("" if none)."""
    if person_id in file.recused:
        return file, ""
    after = replace(
        file,
        recused=tuple(sorted({*file.recused, person_id})),
        working_team=tuple(p for p in file.working_team if p != person_id),
        hearing_team=tuple(p for p in file.hearing_team if p != person_id),
        review_team=tuple(p for p in file.review_team if p != person_id),
        signatures=tuple(p for p in file.signatures if p != person_id),
    )
    emptied = file.current_team() and not after.current_team()
    if emptied and not after.team_requested:
        stage = _team_stage(after)
        return replace(after, team_requested=stage), stage
    return after, ""


def _team_stage(file: CaseFile) -> str:
    kind = team_kind(file.stage)
    if kind != "working":
        return kind
    return "investigation" if file.filed else "verification"
