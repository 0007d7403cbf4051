"""Staffing's draws and recusals → the file's current team (and who may see it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.casefile import NotNow
from services.cases.domain.ruleset import RuleSet
from services.cases.domain.teams import assign_team, recuse, team_unfillable
from services.cases.store import codec
from services.cases.store.tables import CaseFileRow
from services.cases.store.workflow import (
    event_step_moment,
    next_request_id,
    record_step,
    request_team,
    save_file,
)
from services.contracts.cases import Stage
from services.contracts.staffing import RecusalRecorded, TeamAssigned, TeamUnfillable
from services.runtime.envelope import Envelope
from services.runtime.inbox import PoisonEvent

log = logging.getLogger(__name__)


async def _file_row(session: AsyncSession, case_id: str) -> CaseFileRow:
    row = (await session.exec(select(CaseFileRow).where(CaseFileRow.case_id == case_id))).first()
    if row is None:
        raise PoisonEvent(f"no case file {case_id}")
    return row


async def on_team_assigned(session: AsyncSession, event: TeamAssigned, envelope: Envelope) -> None:
    """Put the drawn team on the file, unless the draw breaks a separation rule."""
    row = await _file_row(session, event.case_id)
    file = codec.decode(row.state)
    members = tuple(member.person_id for member in event.members)
    now, recorded_at = await event_step_moment(session, row, datetime.now(UTC))
    try:
        after = assign_team(file, event.stage, members, event.request_id)
    except NotNow as refused:
        # Recorded, not applied: e.g. a hearing team with an investigator on it.
        await record_step(
            session,
            row,
            actor=f"event:{envelope.source}",
            action="team_refused",
            from_stage=file.stage,
            to_stage=file.stage,
            event="TeamRefused",
            reason=refused.reason,
            detail={"draw_id": event.draw_id, "members": list(members)},
            now=now,
            recorded_at=recorded_at,
        )
        return
    await save_file(session, row, after, now=now)
    await record_step(
        session,
        row,
        actor=f"event:{envelope.source}",
        action="team_assigned",
        from_stage=file.stage,
        to_stage=after.stage,
        event="TeamAssigned",
        reason="",
        detail={"draw_id": event.draw_id, "team": event.stage, "members": list(members)},
        now=now,
        recorded_at=recorded_at,
    )


async def on_team_unfillable(
    session: AsyncSession, event: TeamUnfillable, envelope: Envelope
) -> None:
    """Nobody could be drawn: the file says so and waits for a new request."""
    row = await _file_row(session, event.case_id)
    file = codec.decode(row.state)
    try:
        after = team_unfillable(file, event.stage, event.request_id)
    except NotNow:
        return
    now, recorded_at = await event_step_moment(session, row, datetime.now(UTC))
    await save_file(session, row, after, now=now)
    await record_step(
        session,
        row,
        actor=f"event:{envelope.source}",
        action="team_unfillable",
        from_stage=file.stage,
        to_stage=after.stage,
        event="TeamUnfillable",
        reason="; ".join(event.reasons),
        detail={"draw_id": event.draw_id},
        now=now,
        recorded_at=recorded_at,
    )


class RecusalHandler:
    """A granted recusal removes the person from every team of the file at once."""

    def __init__(self, rule_versions: Mapping[str, RuleSet]) -> None:
        # A replacement team is as large as the file's rule version says.
        self._rules = rule_versions

    async def __call__(
        self, session: AsyncSession, event: RecusalRecorded, envelope: Envelope
    ) -> None:
        """Apply the event in the consumer's transaction."""
        await on_recusal(session, event, self._rules)


async def on_recusal(
    session: AsyncSession, event: RecusalRecorded, rule_versions: Mapping[str, RuleSet]
) -> None:
    """Take the recused person off the file's teams; ask for a new team when one fell short."""
    if not event.granted:
        return
    row = await _file_row(session, event.case_id)
    file = codec.decode(row.state)
    after, again = recuse(file, event.person_id)
    if after == file:
        return
    now, recorded_at = await event_step_moment(session, row, datetime.now(UTC))
    request_id = ""
    if again:
        request_id = next_request_id(row, again)
        after = replace(after, team_request_id=request_id)
    await save_file(session, row, after, now=now)
    await record_step(
        session,
        row,
        actor=event.decided_by,
        action="recusal",
        from_stage=file.stage,
        to_stage=after.stage,
        event="RecusalRecorded",
        reason=event.ground,
        detail={"person_id": event.person_id, "recusal_id": event.recusal_id},
        now=now,
        recorded_at=recorded_at,
    )
    if again:
        request_team(
            session,
            row,
            after,
            cast(Stage, again),
            team_size=rule_versions[row.rule_version].team_size(again),
            request_id=request_id,
            actor=event.decided_by,
            now=now,
        )
