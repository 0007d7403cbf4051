"""Clue links on the record: repeated reports, duplicates folded in, related clues, joint cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.casefile import CaseFile, NotNow
from services.cases.domain.clue import ClueStatus
from services.cases.domain.links import (
    DUPLICATE,
    RELATED,
    REPORT,
    joint_townships,
    related_link_key,
    report_link_key,
    supersede,
)
from services.cases.domain.ruleset import RuleSet
from services.cases.store import codec
from services.cases.store.deadlines import end_by_link
from services.cases.store.tables import (
    CaseFileRow,
    CaseStepRow,
    ClueLinkRow,
    ClueRow,
    CommandReceiptRow,
)
from services.cases.store.workflow import (
    SOURCE,
    Authorize,
    CaseMissing,
    KeyReused,
    StepResult,
    apply_transition,
    next_request_id,
    record_step,
    request_team,
    save_file,
)
from services.contracts.cases import Stage, StageChanged
from services.contracts.intake import ReportLinked
from services.runtime.db import Database
from services.runtime.outbox import record_event


class ClueNotYetKnown(Exception):
    """The event names a clue this service has not registered yet (retried, not dropped)."""


class AlreadyLinked(Exception):
    """The two clues are related already (under another idempotency key)."""


async def load(session: AsyncSession, case_id: str, *, lock: bool) -> CaseFileRow | None:
    """A case file row, locked against concurrent commands on PostgreSQL."""
    query = select(CaseFileRow).where(CaseFileRow.case_id == case_id)
    if lock:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def links_of(session: AsyncSession, clue_id: str) -> list[ClueLinkRow]:
    """Every link that names the clue, on either side, oldest first."""
    rows = await session.exec(
        select(ClueLinkRow)
        .where(or_(ClueLinkRow.clue_id == clue_id, ClueLinkRow.other_clue_id == clue_id))
        .order_by(col(ClueLinkRow.at), col(ClueLinkRow.link_key))
    )
    return list(rows.all())


async def record_report_link(
    session: AsyncSession,
    event: ReportLinked,
    rules: Mapping[str, RuleSet],
    *,
    actor: str,
    lock: bool,
    now: datetime,
) -> bool:
    """Apply a ReportLinked in the caller's transaction; False when it was applied before."""
    key = report_link_key(event.clue_id, event.report_id)
    if await session.get(ClueLinkRow, key) is not None:
        return False
    row = await load(session, event.clue_id, lock=lock)
    clue = await session.get(ClueRow, event.clue_id)
    if row is None or clue is None:
        raise ClueNotYetKnown(event.clue_id)
    # Only ever raised: an older or repeated event never lowers the triage score.
    clue.priority = max(clue.priority or 0, event.priority)
    clue.repeat_count = max(clue.repeat_count, event.repeat_count)
    session.add(clue)
    superseded = event.superseded_clue_id or ""
    session.add(
        ClueLinkRow(
            link_key=key,
            county_id=row.county_id,
            kind=DUPLICATE if superseded else REPORT,
            clue_id=event.clue_id,
            other_clue_id=superseded,
            report_id=event.report_id,
            linked_by=event.linked_by,
            reason="",
            at=now,
        )
    )
    await record_step(
        session,
        row,
        actor=actor,
        action="link_report",
        from_stage=row.stage,
        to_stage=row.stage,
        event="ReportLinked",
        reason=f"linked by {event.linked_by}",
        detail={
            "report_id": event.report_id,
            "repeat_count": event.repeat_count,
            "priority": clue.priority,
            "linked_by": event.linked_by,
            "superseded_clue_id": superseded,
        },
        now=now,
    )
    if superseded:
        await _close_duplicate(session, superseded, event.clue_id, rules, actor, lock, now)
    await session.flush()
    return True


async def _close_duplicate(
    session: AsyncSession,
    clue_id: str,
    surviving_id: str,
    rules: Mapping[str, RuleSet],
    actor: str,
    lock: bool,
    now: datetime,
) -> None:
    """Close a superseded clue as LINKED_DUPLICATE (or note why it stays open)."""
    row = await load(session, clue_id, lock=lock)
    clue = await session.get(ClueRow, clue_id)
    if row is None or clue is None:
        raise ClueNotYetKnown(clue_id)
    file = codec.decode(row.state)
    transition = supersede(file, surviving_id)
    if transition is None:
        # Filed or closed already: its own record stands; the link alone says it overlaps.
        await record_step(
            session,
            row,
            actor=actor,
            action="link_duplicate",
            from_stage=row.stage,
            to_stage=row.stage,
            event="ClueLinked",
            reason="not closed: already filed or closed",
            detail={"duplicate_of": surviving_id, "closed": False},
            now=now,
        )
        return
    await apply_transition(session, row, transition, rules[row.rule_version], actor=actor, now=now)
    await end_by_link(session, clue_id, now=now)
    clue.status = ClueStatus.LINKED_DUPLICATE.value
    session.add(clue)


class ClueLinks:
    """Commands that link clues as related or make a case joint, once per idempotency key."""

    def __init__(self, database: Database, rule_versions: Mapping[str, RuleSet]) -> None:
        self._db = database
        # A renewed team request draws as many people as the file's rule version says.
        self._rules = rule_versions

    async def relate(
        self,
        *,
        county_id: str,
        clue_id: str,
        other_clue_id: str,
        reason: str,
        idempotency_key: str,
        digest: str,
        actor: str,
        authorize: Authorize,
    ) -> StepResult:
        """Link two clues as related; both records get a history and audit entry."""
        async with self._db.transaction() as session:
            replay = await _replay(session, county_id, idempotency_key, digest, clue_id, authorize)
            if replay is not None:
                return replay
            rows: dict[str, CaseFileRow] = {}
            # Locked in id order so two opposite links cannot deadlock.
            for case_id in sorted((clue_id, other_clue_id)):
                row = await load(session, case_id, lock=not self._db.is_sqlite)
                if row is None or row.county_id != county_id:
                    raise CaseMissing(case_id)
                authorize(row, codec.decode(row.state))
                rows[case_id] = row
            key = related_link_key(clue_id, other_clue_id)
            if await session.get(ClueLinkRow, key) is not None:
                raise AlreadyLinked(key)
            now = datetime.now(UTC)
            session.add(
                ClueLinkRow(
                    link_key=key,
                    county_id=county_id,
                    kind=RELATED,
                    clue_id=clue_id,
                    other_clue_id=other_clue_id,
                    report_id="",
                    linked_by=actor,
                    reason=reason,
                    at=now,
                )
            )
            steps = {}
            for case_id, row in rows.items():
                other = other_clue_id if case_id == clue_id else clue_id
                steps[case_id] = await _side_step(
                    session, row, actor, "link_related", reason, {"related_clue_id": other}, now
                )
            return await _finish(
                session, county_id, idempotency_key, digest, rows[clue_id], steps[clue_id]
            )

    async def declare_joint(
        self,
        *,
        county_id: str,
        case_id: str,
        township_ids: list[str],
        reason: str,
        idempotency_key: str,
        digest: str,
        actor: str,
        authorize: Authorize,
    ) -> StepResult:
        """Make a case joint across further townships; an open team request is renewed."""
        async with self._db.transaction() as session:
            replay = await _replay(session, county_id, idempotency_key, digest, case_id, authorize)
            if replay is not None:
                return replay
            row = await load(session, case_id, lock=not self._db.is_sqlite)
            if row is None or row.county_id != county_id:
                raise CaseMissing(case_id)
            file = codec.decode(row.state)
            authorize(row, file)
            townships = joint_townships(file, row.township_id, township_ids)
            if townships == file.joint_townships:
                raise NotNow("those townships are part of the joint case already")
            after = replace(file, joint_townships=townships)
            now = datetime.now(UTC)
            request_id = ""
            if file.team_requested:
                # The open request may draw from a township now excluded: ask again; a late
                # answer to the old request no longer matches and changes nothing.
                request_id = next_request_id(row, file.team_requested)
                after = replace(after, team_request_id=request_id)
            await save_file(session, row, after, now=now)
            if request_id:
                stage = cast(Stage, file.team_requested)
                request_team(
                    session,
                    row,
                    after,
                    stage,
                    team_size=self._rules[row.rule_version].team_size(stage),
                    request_id=request_id,
                    actor=actor,
                    now=now,
                )
            detail = {"township_ids": list(townships), "team_request_id": request_id}
            step = await _side_step(session, row, actor, "declare_joint", reason, detail, now)
            return await _finish(session, county_id, idempotency_key, digest, row, step)


async def _side_step(
    session: AsyncSession,
    row: CaseFileRow,
    actor: str,
    action: str,
    reason: str,
    detail: Mapping[str, object],
    now: datetime,
) -> CaseStepRow:
    """A step that changes no stage: history, audit and a StageChanged for subscribers."""
    step = await record_step(
        session,
        row,
        actor=actor,
        action=action,
        from_stage=row.stage,
        to_stage=row.stage,
        event="StageChanged",
        reason=reason,
        detail=detail,
        now=now,
    )
    record_event(
        session,
        StageChanged(
            county_id=row.county_id,
            zone_id=row.zone_id,
            case_id=row.case_id,
            township_id=row.township_id,
            action=action,
            from_stage=row.stage,
            to_stage=row.stage,
            actor=actor,
            reason=reason,
            rule_version=row.rule_version,
            occurred_at=now,
            detail={**detail, "event": "StageChanged"},
        ),
        source=SOURCE,
        occurred_at=now,
    )
    return step


async def _replay(
    session: AsyncSession,
    county_id: str,
    key: str,
    digest: str,
    case_id: str,
    authorize: Authorize,
) -> StepResult | None:
    """The first result of a retried command, or None for a new key."""
    receipt = await session.get(CommandReceiptRow, (county_id, key))
    if receipt is None:
        return None
    if receipt.request_digest != digest or receipt.case_id != case_id:
        raise KeyReused(key)
    step = await session.get(CaseStepRow, receipt.step_id)
    row = await session.get(CaseFileRow, case_id)
    assert step is not None and step.id is not None and row is not None
    decoded = codec.decode(row.state)
    file: CaseFile | None = decoded
    try:
        authorize(row, decoded)
    except Exception:
        # A retry still learns its own step, even if it can no longer see the file.
        file = None
    return StepResult(
        case_id,
        step.id,
        step.from_stage,
        step.to_stage,
        step.event,
        True,
        step,
        row if file else None,
        file,
    )


async def _finish(
    session: AsyncSession,
    county_id: str,
    key: str,
    digest: str,
    row: CaseFileRow,
    step: CaseStepRow,
) -> StepResult:
    assert step.id is not None
    session.add(
        CommandReceiptRow(
            county_id=county_id,
            idempotency_key=key,
            case_id=row.case_id,
            request_digest=digest,
            step_id=step.id,
        )
    )
    await session.flush()
    return StepResult(
        row.case_id,
        step.id,
        step.from_stage,
        step.to_stage,
        step.event,
        False,
        step,
        row,
        codec.decode(row.state),
    )
