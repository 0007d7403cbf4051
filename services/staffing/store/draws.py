"""Draw records, the county's draw chain, and the facts a draw is computed from."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.staffing.domain.draw import (
    GENESIS_HASH,
    CandidateFacts,
    DrawRecord,
    DrawRequest,
    Pool,
)
from services.staffing.domain.draw_codec import decode_record
from services.staffing.domain.draw_record import text_hash
from services.staffing.domain.registry import CASE_WORKING_ROLES, PersonStatus, StatusPeriod
from services.staffing.domain.registry import status_on as status_of
from services.staffing.store.tables import (
    AssignmentRow,
    ConflictRow,
    DrawChainHead,
    DrawRow,
    PersonRow,
    PersonStatusRow,
    RecusalRow,
)

# Assignments that count towards a person's open workload.
OPEN_STATES = ("drawn", "accepted")
# Assignments that mean the person worked the case (a decline does not).
WORKED_STATES = ("drawn", "accepted", "released")


class ChainMoved(Exception):
    """Another draw of the county extended the chain first; the caller retries."""


async def candidate_facts(session: AsyncSession, request: DrawRequest) -> list[CandidateFacts]:
    """Everyone in the request's pool scope, with what the draw needs to know about them."""
    people_query = select(PersonRow).where(
        PersonRow.county_id == request.county_id, col(PersonRow.informant).is_(False)
    )
    if request.pool is Pool.ZONE:
        people_query = people_query.where(PersonRow.zone_id == request.zone_id)
    people = list((await session.exec(people_query)).all())
    ids = [person.person_id for person in people]
    if not ids:
        return []

    periods: dict[str, list[StatusPeriod]] = defaultdict(list)
    status_rows = await session.exec(
        select(PersonStatusRow).where(col(PersonStatusRow.person_id).in_(ids))
    )
    for row in status_rows.all():
        periods[row.person_id].append(
            StatusPeriod(status=PersonStatus(row.status), start=row.start, end=row.end)
        )

    conflicts: dict[str, str] = {}
    conflict_rows = await session.exec(
        select(ConflictRow).where(
            ConflictRow.county_id == request.county_id,
            ConflictRow.party_key == request.subject_key,
        )
    )
    for conflict in conflict_rows.all():
        if conflict.valid_from <= request.on_date and (
            conflict.valid_until is None or request.on_date <= conflict.valid_until
        ):
            conflicts.setdefault(conflict.person_id, conflict.relation)

    recused = set(
        (
            await session.exec(
                select(RecusalRow.person_id).where(
                    RecusalRow.case_id == request.case_id, RecusalRow.state == "granted"
                )
            )
        ).all()
    )

    workload: dict[str, int] = dict(
        (
            await session.exec(
                select(AssignmentRow.person_id, func.count())
                .where(col(AssignmentRow.person_id).in_(ids))
                .where(col(AssignmentRow.state).in_(OPEN_STATES))
                .group_by(col(AssignmentRow.person_id))
            )
        ).all()
    )

    worked: dict[str, set[str]] = defaultdict(set)
    worked_rows = await session.exec(
        select(AssignmentRow.person_id, AssignmentRow.stage).where(
            AssignmentRow.case_id == request.case_id,
            col(AssignmentRow.state).in_(WORKED_STATES),
        )
    )
    for person_id, stage in worked_rows.all():
        worked[person_id].add(stage)

    return [
        CandidateFacts(
            person_id=person.person_id,
            zone_id=person.zone_id,
            home_township_id=person.home_township_id,
            case_working=bool(CASE_WORKING_ROLES.intersection(json.loads(person.roles))),
            skills=tuple(sorted(json.loads(person.skills))),
            status=status_of(tuple(periods[person.person_id]), request.on_date).value,
            open_workload=workload.get(person.person_id, 0),
            workload_cap=person.workload_cap,
            conflict=conflicts.get(person.person_id),
            recused=person.person_id in recused,
            worked_stages=tuple(sorted(worked[person.person_id])),
        )
        for person in people
    ]


async def chain_head(session: AsyncSession, county_id: str) -> str:
    """The hash the county's next draw chains from."""
    head = await session.get(DrawChainHead, county_id)
    return head.last_hash if head is not None else GENESIS_HASH


async def draw_of_request(session: AsyncSession, request_id: str, round_: int) -> DrawRow | None:
    """The draw already recorded for this request round, if any."""
    query = select(DrawRow).where(DrawRow.request_id == request_id, DrawRow.round == round_)
    return (await session.exec(query)).first()


async def latest_round(session: AsyncSession, request_id: str) -> DrawRow | None:
    """The newest recorded draw round of a request."""
    query = (
        select(DrawRow)
        .where(DrawRow.request_id == request_id)
        .order_by(col(DrawRow.round).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def save_draw(
    session: AsyncSession,
    record: DrawRecord,
    *,
    round_: int,
    cause: str,
    drawn_at: datetime | None = None,
) -> DrawRow:
    """Record the draw, advance the county's chain and open the drawn people's assignments."""
    when = drawn_at or datetime.now(UTC)
    request = record.request
    # The stored text is exactly what the hash covers, so the hash can be checked on the row.
    text = record.canonical_json()
    record_hash = text_hash(text)
    head = await session.get(DrawChainHead, request.county_id)
    if head is None:
        if record.previous_hash != GENESIS_HASH:
            raise ChainMoved(f"county {request.county_id} has no chain to extend")
        session.add(DrawChainHead(county_id=request.county_id, last_hash=record_hash, draws=1))
    else:
        moved = await session.exec(
            update(DrawChainHead)
            .where(
                col(DrawChainHead.county_id) == request.county_id,
                col(DrawChainHead.last_hash) == record.previous_hash,
            )
            .values(last_hash=record_hash, draws=DrawChainHead.draws + 1)
        )
        if moved.rowcount != 1:
            raise ChainMoved(f"county {request.county_id}'s draw chain moved on")
    row = DrawRow(
        draw_id=record.draw_id,
        county_id=request.county_id,
        zone_id=request.zone_id,
        request_id=request.request_id,
        round=round_,
        case_id=request.case_id,
        stage=request.stage.value,
        cause=cause,
        filled=record.outcome.filled,
        previous_hash=record.previous_hash,
        record_hash=record_hash,
        record=text,
        drawn_at=when,
    )
    session.add(row)
    for position, person_id in enumerate(record.outcome.members):
        session.add(
            AssignmentRow(
                assignment_id=f"{record.draw_id}:{person_id}",
                draw_id=record.draw_id,
                request_id=request.request_id,
                county_id=request.county_id,
                zone_id=request.zone_id,
                case_id=request.case_id,
                stage=request.stage.value,
                person_id=person_id,
                # A redraw replaces one member: the team keeps its leader.
                leader=position == 0 and cause != "declined",
                state="drawn",
                updated_at=when,
            )
        )
    await session.flush()
    return row


def record_of(row: DrawRow) -> DrawRecord:
    """The stored draw record."""
    return decode_record(row.record)
