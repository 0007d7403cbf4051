"""Drawing a team inside a unit of work: facts, draw, record, audit and event together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.contracts.staffing import (
    AssistanceTeamDrawn,
    TeamAssigned,
    TeamMember,
    TeamUnfillable,
)
from services.runtime import audit
from services.runtime.outbox import record_event
from services.staffing.domain.draw import DrawRecord, DrawRequest, run_draw
from services.staffing.domain.draw_rules import DrawRules, draw_rules_in_force
from services.staffing.releasing import release_assignments
from services.staffing.secrets import CountySecrets
from services.staffing.store.casework import open_case_assignments
from services.staffing.store.draws import candidate_facts, chain_head, save_draw

SOURCE = "xiezuo/staffing"
# Request ids of draws for another county's assistance letter (协查函) accepted here.
ASSISTANCE_REQUEST_PREFIX = "assist-"


def assistance_request_id(letter_id: str) -> str:
    """The draw request of a letter: one per letter, so a redelivery never draws twice."""
    return f"{ASSISTANCE_REQUEST_PREFIX}{letter_id}"


def is_assistance_request(request_id: str) -> bool:
    """Whether a draw request is for an assistance letter rather than a case."""
    return request_id.startswith(ASSISTANCE_REQUEST_PREFIX)


class TeamDrawer:
    """Runs a recorded draw and publishes its result through the outbox."""

    def __init__(self, secrets: CountySecrets, rule_versions: Sequence[DrawRules]) -> None:
        self._secrets = secrets
        self._rule_versions = list(rule_versions)

    def secret_for(self, county_id: str) -> str:
        """The county's draw secret (to check a recorded seed)."""
        return self._secrets.for_county(county_id)

    async def draw(
        self,
        session: AsyncSession,
        request: DrawRequest,
        *,
        round_: int,
        cause: str,
        actor: str,
        kept: Sequence[TeamMember] = (),
    ) -> DrawRecord:
        """Draw for `request` in the caller's transaction; `kept` members stay on the team.

        A draw for an assistance letter (any round) is announced as AssistanceTeamDrawn, not
        TeamAssigned/TeamUnfillable: the letter is no case of this county's cases service.
        """
        rules = draw_rules_in_force(self._rule_versions, request.on_date)
        now = datetime.now(UTC)
        if cause == "requested":
            # A new request for a stage the case already has a team for replaces that team:
            # its members' workload ends before the draw counts everyone's workload.
            earlier = [
                row
                for row in await open_case_assignments(session, request.case_id)
                if row.stage == request.stage.value and row.request_id != request.request_id
            ]
            await release_assignments(
                session,
                earlier,
                county_id=request.county_id,
                zone_id=request.zone_id,
                case_id=request.case_id,
                reason=f"team replaced by request {request.request_id}",
                actor=actor,
                at=now,
            )
            await session.flush()
        facts = await candidate_facts(session, request)
        record = run_draw(
            draw_id=str(uuid.uuid4()),
            request=request,
            candidates=facts,
            rules=rules,
            previous_hash=await chain_head(session, request.county_id),
            county_secret=self._secrets.for_county(request.county_id),
        )
        await save_draw(session, record, round_=round_, cause=cause, drawn_at=now)
        await audit.append(
            session,
            county_id=request.county_id,
            actor=actor,
            action="draw.recorded",
            record_type="draw",
            record_id=record.draw_id,
            detail={
                "request_id": request.request_id,
                "case_id": request.case_id,
                "round": round_,
                "cause": cause,
                "members": list(record.outcome.members),
                "unfillable": list(record.outcome.unfillable_reasons),
            },
            at=now,
        )
        townships = {fact.person_id: fact.home_township_id for fact in record.candidates}
        drawn = [
            TeamMember(
                person_id=person_id,
                home_township_id=townships[person_id] or "",
                leader=not kept and position == 0,
            )
            for position, person_id in enumerate(record.outcome.members)
        ]
        if is_assistance_request(request.request_id):
            filled = record.outcome.filled
            record_event(
                session,
                AssistanceTeamDrawn(
                    county_id=request.county_id,
                    zone_id=request.zone_id,
                    letter_id=request.case_id,
                    request_id=request.request_id,
                    draw_id=record.draw_id,
                    members=[*kept, *drawn] if filled else [],
                    reasons=list(record.outcome.unfillable_reasons),
                    drawn_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
        elif record.outcome.filled:
            record_event(
                session,
                TeamAssigned(
                    county_id=request.county_id,
                    zone_id=request.zone_id,
                    request_id=request.request_id,
                    case_id=request.case_id,
                    stage=request.stage.value,
                    draw_id=record.draw_id,
                    members=[*kept, *drawn],
                    assigned_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
        else:
            record_event(
                session,
                TeamUnfillable(
                    county_id=request.county_id,
                    zone_id=request.zone_id,
                    request_id=request.request_id,
                    case_id=request.case_id,
                    stage=request.stage.value,
                    draw_id=record.draw_id,
                    reasons=list(record.outcome.unfillable_reasons),
                    decided_at=now,
                ),
                source=SOURCE,
                occurred_at=now,
            )
        return record
