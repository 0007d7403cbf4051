"""Applying workflow steps: state, history, audit, outbox events, teams and deadlines in one go."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.cases.domain.casefile import Actor, CaseFile, Command, Transition, handle
from services.cases.domain.links import excluded_townships
from services.cases.domain.ruleset import RuleSet
from services.cases.domain.teams import excluded_from
from services.cases.store import codec
from services.cases.store.deadlines import extend_clock, open_deadline, running, stop_clock
from services.cases.store.tables import (
    CaseFileRow,
    CaseJointTownshipRow,
    CaseMemberRow,
    CaseStepRow,
    ClueRow,
    CommandReceiptRow,
    DeadlineRow,
)
from services.contracts.base import IntegrationEvent
from services.contracts.cases import (
    CaseClosed,
    CaseDecided,
    CaseFiled,
    CaseStepRecorded,
    CaseTransferred,
    ClueDisposed,
    ExtensionGranted,
    Stage,
    StageChanged,
    TeamRequested,
)
from services.runtime import audit
from services.runtime.db import Database, as_utc
from services.runtime.outbox import record_event

SOURCE = "xiezuo/cases"
_EVENTS: dict[str, type[CaseStepRecorded]] = {
    "ClueDisposed": ClueDisposed,
    "CaseFiled": CaseFiled,
    "ExtensionGranted": ExtensionGranted,
    "CaseDecided": CaseDecided,
    "CaseTransferred": CaseTransferred,
}

Authorize = Callable[[CaseFileRow, CaseFile], None]


class KeyReused(Exception):
    """The idempotency key was used before for a different command."""


class CaseMissing(Exception):
    """No such clue/case."""


class OutOfOrder(Exception):
    """A back-dated step would come before the file's last step."""

    def __init__(self, last: datetime) -> None:
        super().__init__(f"the file's last step was at {last.isoformat()}")
        self.last = last


@dataclass(frozen=True)
class StepResult:
    """What a command did (or, for a retry, had done)."""

    case_id: str
    step_id: int
    from_stage: str
    to_stage: str
    event: str
    replayed: bool
    # The history entry and the file as it stands after the command (for the caller's answer).
    step: CaseStepRow | None = None
    row: CaseFileRow | None = None
    file: CaseFile | None = None


class Workflow:
    """Commands on case files, applied exactly once per idempotency key."""

    def __init__(self, database: Database, rule_versions: Mapping[str, RuleSet]) -> None:
        self._db = database
        self._rules = rule_versions

    def rules(self, version: str) -> RuleSet | None:
        """The rule-set version a file is judged by (None if this process does not know it)."""
        return self._rules.get(version)

    def approval_stages(self) -> frozenset[str]:
        """Every stage from which some known rule-set version takes an approval."""
        return frozenset(
            stage
            for rules in self._rules.values()
            for rule in rules.transitions.values()
            if rule.approval
            for stage in rule.from_stages
        )

    async def act(
        self,
        *,
        county_id: str,
        case_id: str,
        idempotency_key: str,
        digest: str,
        command: Command,
        actor: Actor,
        authorize: Authorize,
        effective_at: datetime | None = None,
    ) -> StepResult:
        """Apply a command once; a retry with the same key returns the first result.

        `effective_at` (back-entry) dates the step; the caller checked the grant and window.
        """
        args = (county_id, case_id, idempotency_key, digest, command, actor, authorize)
        try:
            return await self._act(*args, effective_at)
        except IntegrityError:
            # A concurrent retry committed the same key first: answer with its result.
            return await self._act(*args, effective_at)

    async def _act(
        self,
        county_id: str,
        case_id: str,
        key: str,
        digest: str,
        command: Command,
        actor: Actor,
        authorize: Authorize,
        effective_at: datetime | None,
    ) -> StepResult:
        async with self._db.transaction() as session:
            row = await _load(session, case_id, lock=not self._db.is_sqlite)
            if row is None or row.county_id != county_id:
                raise CaseMissing(case_id)
            file = codec.decode(row.state)
            receipt = await session.get(CommandReceiptRow, (county_id, key))
            if receipt is not None:
                # The digest binds the key to the same caller and request, so a retry is
                # answered even when the first call moved the file out of the caller's sight
                # (e.g. a report handing it to the hearing team); only its own step is shown.
                if receipt.request_digest != digest or receipt.case_id != case_id:
                    raise KeyReused(key)
                step = await session.get(CaseStepRow, receipt.step_id)
                assert step is not None and step.id is not None
                visible: CaseFile | None = file
                try:
                    authorize(row, file)
                except Exception:
                    visible = None
                return StepResult(
                    case_id,
                    step.id,
                    step.from_stage,
                    step.to_stage,
                    step.event,
                    True,
                    step,
                    row if visible else None,
                    visible,
                )
            authorize(row, file)
            rules = self._rules[row.rule_version]
            recorded = datetime.now(UTC)
            if effective_at is not None:
                last = await last_moment(session, row)
                if effective_at < last:
                    raise OutOfOrder(last)
            # The domain judges windows (e.g. the appeal's) by when the step takes effect.
            dated = replace(command, at=effective_at or recorded)
            transition = handle(file, dated, actor, rules)
            step = await apply_transition(
                session,
                row,
                transition,
                rules,
                actor=actor.person_id,
                now=effective_at or recorded,
                recorded_at=recorded if effective_at is not None else None,
            )
            assert step.id is not None
            session.add(
                CommandReceiptRow(
                    county_id=county_id,
                    idempotency_key=key,
                    case_id=case_id,
                    request_digest=digest,
                    step_id=step.id,
                )
            )
            await session.flush()
            return StepResult(
                case_id,
                step.id,
                step.from_stage,
                step.to_stage,
                step.event,
                False,
                step,
                row,
                codec.decode(row.state),
            )


async def _last_step(session: AsyncSession, case_id: str) -> CaseStepRow | None:
    query = (
        select(CaseStepRow)
        .where(CaseStepRow.case_id == case_id)
        .order_by(col(CaseStepRow.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def last_moment(session: AsyncSession, row: CaseFileRow) -> datetime:
    """When the file's latest step took effect (its registration when it has none)."""
    last = await _last_step(session, row.case_id)
    if last is not None:
        return as_utc(last.at)
    clue = await session.get(ClueRow, row.case_id)
    return as_utc(clue.registered_at if clue is not None else row.updated_at)


async def event_step_moment(
    session: AsyncSession, row: CaseFileRow, now: datetime
) -> tuple[datetime, datetime | None]:
    """When a step caused by an event (a drawn team, a recusal) takes effect, and its entry.

    While a file is being back-entered its record runs on paper time: the event's step is
    dated with the step before it (and says when it was really entered), so the rest of the
    back-entry can follow in order. Otherwise it is simply now.
    """
    last = await _last_step(session, row.case_id)
    if last is not None and "recorded_at" in json.loads(last.detail or "{}"):
        return as_utc(last.at), now
    return now, None


async def _load(session: AsyncSession, case_id: str, *, lock: bool) -> CaseFileRow | None:
    query = select(CaseFileRow).where(CaseFileRow.case_id == case_id)
    if lock:
        # Commands on one file are serialised; different files proceed in parallel.
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def save_file(
    session: AsyncSession, row: CaseFileRow, file: CaseFile, *, now: datetime
) -> None:
    """Write the file's new state, its team memberships, recusals and joint townships."""
    row.state = codec.encode(file)
    row.stage = file.stage
    row.revision += 1
    row.updated_at = now
    session.add(row)
    await session.exec(delete(CaseMemberRow).where(col(CaseMemberRow.case_id) == row.case_id))
    for team, members in (
        ("working", file.working_team),
        ("hearing", file.hearing_team),
        ("review", file.review_team),
        # Kept beside the teams so reads can refuse a recused person without decoding state.
        ("recused", file.recused),
    ):
        for person in members:
            session.add(CaseMemberRow(case_id=row.case_id, person_id=person, team=team))
    await session.exec(
        delete(CaseJointTownshipRow).where(col(CaseJointTownshipRow.case_id) == row.case_id)
    )
    for township in file.joint_townships:
        session.add(CaseJointTownshipRow(case_id=row.case_id, township_id=township))


async def record_step(
    session: AsyncSession,
    row: CaseFileRow,
    *,
    actor: str,
    action: str,
    from_stage: str,
    to_stage: str,
    event: str,
    reason: str,
    detail: Mapping[str, object],
    now: datetime,
    recorded_at: datetime | None = None,
) -> CaseStepRow:
    """The history entry and its audit entry (who, when, from, to, why).

    A back-entered step is dated `now` (when it took effect) and says when it was entered;
    the audit log runs on real time and names the effective moment.
    """
    audit_detail: dict[str, object] = {
        "from": from_stage,
        "to": to_stage,
        "event": event,
        "reason": reason,
    }
    if recorded_at is not None:
        detail = {**detail, "recorded_at": recorded_at.isoformat()}
        audit_detail["effective_at"] = now.isoformat()
    step = CaseStepRow(
        case_id=row.case_id,
        at=now,
        actor=actor,
        action=action,
        from_stage=from_stage,
        to_stage=to_stage,
        event=event,
        reason=reason,
        detail=json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str),
    )
    session.add(step)
    await session.flush()
    await audit.append(
        session,
        county_id=row.county_id,
        actor=actor,
        action=f"case.{action}",
        record_type="case",
        record_id=row.case_id,
        detail=audit_detail,
        at=recorded_at or now,
    )
    return step


async def apply_transition(
    session: AsyncSession,
    row: CaseFileRow,
    transition: Transition,
    rules: RuleSet,
    *,
    actor: str,
    now: datetime,
    recorded_at: datetime | None = None,
) -> CaseStepRow:
    """Persist a transition with its history, audit, outbox event, team request and clocks.

    `now` is when the step took effect; `recorded_at` the real entry time of a back-entry.
    """
    before, after = transition.before, transition.after
    request_id = ""
    if transition.team_needed:
        request_id = next_request_id(row, transition.team_needed)
        after = replace(after, team_request_id=request_id)
    await save_file(session, row, after, now=now)
    reason = str(transition.detail.get("reason", ""))
    step = await record_step(
        session,
        row,
        actor=actor,
        action=transition.action,
        from_stage=before.stage,
        to_stage=after.stage,
        event=transition.event,
        reason=reason,
        detail=transition.detail,
        now=now,
        recorded_at=recorded_at,
    )
    event_detail: dict[str, object] = {**transition.detail, "event": transition.event}
    if recorded_at is not None:
        # Consumers judging their own deadlines by this step give a back-entry time too.
        event_detail["back_entered"] = True
    event_classes: list[type[CaseStepRecorded]] = [_EVENTS.get(transition.event, StageChanged)]
    if after.stage == "closed" and before.stage != "closed":
        # A step that closes the file also says so (staffing frees teams, the reporter is
        # told); a disposal by closure (予以了结) stays a disposal too, so it is counted as one.
        if event_classes[0] is StageChanged:
            event_classes = [CaseClosed]
        else:
            event_classes.append(CaseClosed)
    for event_class in event_classes:
        record_event(
            session,
            event_class(
                county_id=row.county_id,
                zone_id=row.zone_id,
                case_id=row.case_id,
                township_id=row.township_id,
                action=transition.action,
                from_stage=before.stage,
                to_stage=after.stage,
                actor=actor,
                reason=reason,
                rule_version=row.rule_version,
                occurred_at=now,
                detail=event_detail,
            ),
            source=SOURCE,
            occurred_at=now,
        )
    if transition.team_needed:
        stage = cast(Stage, transition.team_needed)
        request_team(
            session,
            row,
            after,
            stage,
            team_size=rules.team_size(stage),
            request_id=request_id,
            actor=actor,
            now=now,
        )
    if transition.clock_stopped:
        await stop_clock(
            session, row.case_id, transition.clock_stopped, now=now, recorded_at=recorded_at
        )
    if transition.clock_started:
        await start_clock(
            session, row, transition.clock_started, rules, now=now, recorded_at=recorded_at
        )
    if transition.extended_days:
        await extend_clock(
            session,
            row.case_id,
            after.clock,
            transition.extended_days,
            rules,
            now=now,
            recorded_at=recorded_at,
        )
    await _side_clock(session, row, transition, rules, now=now, recorded_at=recorded_at)
    return step


async def _side_clock(
    session: AsyncSession,
    row: CaseFileRow,
    transition: Transition,
    rules: RuleSet,
    *,
    now: datetime,
    recorded_at: datetime | None,
) -> None:
    """Start, stop or extend a time limit that runs beside the file's clock (留置)."""
    if transition.side_clock_stopped:
        kind = transition.side_clock_stopped
        await stop_clock(session, row.case_id, kind, now=now, recorded_at=recorded_at)
    if transition.side_clock_started:
        await start_clock(
            session, row, transition.side_clock_started, rules, now=now, recorded_at=recorded_at
        )
    if transition.side_extended_months:
        for deadline in await running(session, row.case_id, "retention"):
            due = as_utc(deadline.due_at)
            days = (rules.months_after(due, transition.side_extended_months) - due).days
            await extend_clock(
                session, row.case_id, "retention", days, rules, now=now, recorded_at=recorded_at
            )


def request_team(
    session: AsyncSession,
    row: CaseFileRow,
    file: CaseFile,
    stage: Stage,
    *,
    team_size: int,
    request_id: str,
    actor: str,
    now: datetime,
) -> IntegrationEvent:
    """Ask staffing for a team of `team_size` (异地办案: nobody from the subject's township)."""
    event = TeamRequested(
        county_id=row.county_id,
        zone_id=row.zone_id,
        request_id=request_id,
        case_id=row.case_id,
        stage=stage,
        subject_township_id=row.township_id,
        excluded_township_ids=excluded_townships(row.township_id, file),
        subject_key=row.subject_key,
        team_size=team_size,
        excluded_person_ids=list(excluded_from(file, stage)),
        requested_by=actor,
        requested_at=now,
    )
    record_event(session, event, source=SOURCE, occurred_at=now)
    return event


def next_request_id(row: CaseFileRow, stage: str) -> str:
    """The id of a team request made by the file's next save (unique per file revision)."""
    return f"{row.case_id}:{stage}:{row.revision + 1}"


async def start_clock(
    session: AsyncSession,
    row: CaseFileRow,
    kind: str,
    rules: RuleSet,
    *,
    now: datetime,
    recorded_at: datetime | None = None,
) -> DeadlineRow:
    """A new deadline for `kind` on the file, due per the file's own rule version."""
    return await open_deadline(
        session,
        record_id=row.case_id,
        county_id=row.county_id,
        zone_id=row.zone_id,
        kind=kind,
        rules=rules,
        started_at=now,
        recorded_at=recorded_at,
    )
