"""Live notices: the console's own reader of the notice topics, fanned out to signed-in users.

One reader per console process reads every partition of the notice topics from their end
(no consumer group: each replica serves its own connections, so each must see every record;
a notice missed while nobody was connected is on the pages anyway, so nothing is committed).
Each record becomes a `Notice` holding only allowlisted facts (never a reporter, never free
text), and each server-sent-events connection forwards a notice only when the services say
its user may read what the notice is about: the case, rectification item or letter is read
with the user's own token, so the services' visibility rules (zone, team, recusal) decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import grpc
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.collaboration.v1 import collaboration_pb2, collaboration_pb2_grpc

from services.contracts import cases, collaboration, staffing
from services.contracts.base import IntegrationEvent
from services.contracts.registry import EVENT_TYPES
from services.runtime.envelope import Envelope, EnvelopeError
from services.runtime.kafka_security import KafkaSecurity, client_kwargs

log = logging.getLogger(__name__)

# Deadline notices, workflow steps, draws and answers: what a user wants to see without reload.
NOTICE_TOPICS = (
    cases.DEADLINES_TOPIC,
    cases.WORKFLOW_TOPIC,
    staffing.DRAWS_TOPIC,
    collaboration.ANSWERS_TOPIC,
)
# What a notice is about; each is read back through the service that owns it.
CASE, RECTIFICATION, LETTER = "case", "rectification", "letter"
# A slow browser must not hold the reader up: its oldest notices are dropped instead.
QUEUE_SIZE = 100
# How long a service's answer about one subject holds for one connection.
VERDICT_SECONDS = 30.0
KEEPALIVE_SECONDS = 15.0
# One visibility read; a service slower than this withholds the notice.
READ_SECONDS = 5.0
RECONNECT_SECONDS = (0.5, 15.0)


@dataclass(frozen=True)
class Notice:
    """One event as the console may show it: what happened to which subject, nothing more."""

    event_id: str
    what: str
    county_id: str
    zone_id: str
    subject_kind: str
    subject_id: str
    occurred_at: datetime
    # Display facts from an allowlist per event type (stage, deadline kind, due date, ...).
    facts: Mapping[str, str] = field(default_factory=dict)
    # Staff the event names (drawn members): it is about them, so they see it without a read.
    named: frozenset[str] = frozenset()

    def payload(self) -> dict[str, Any]:
        """The JSON a browser receives (never who else was named)."""
        return {
            "id": self.event_id,
            "what": self.what,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "zone_id": self.zone_id,
            "occurred_at": self.occurred_at.isoformat(),
            "facts": dict(self.facts),
        }


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _facts(event: IntegrationEvent, *names: str) -> dict[str, str]:
    return {name: _text(getattr(event, name)) for name in names}


def _deadline(event: cases.DeadlineNotice) -> tuple[str, str, dict[str, str], frozenset[str]]:
    kind = RECTIFICATION if event.record_type == "rectification" else CASE
    return kind, event.case_id, _facts(event, "kind", "due_at"), frozenset()


def _step(event: cases.CaseStepRecorded) -> tuple[str, str, dict[str, str], frozenset[str]]:
    # Not `reason` or `detail`: free text and action facts stay on the case file.
    return CASE, event.case_id, _facts(event, "action", "to_stage"), frozenset()


def _assigned(event: staffing.TeamAssigned) -> tuple[str, str, dict[str, str], frozenset[str]]:
    people = frozenset(member.person_id for member in event.members)
    return CASE, event.case_id, _facts(event, "stage"), people


def _unfillable(
    event: staffing.TeamUnfillable,
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    return CASE, event.case_id, _facts(event, "stage"), frozenset()


def _overridden(
    event: staffing.DrawOverridden,
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    return CASE, event.case_id, {}, frozenset(event.member_person_ids)


def _declined(
    event: staffing.AssignmentDeclined,
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    # Who declined, and why, stays with staffing; the case's readers learn a redraw happened.
    return CASE, event.case_id, {}, frozenset()


def _assistance_team(
    event: staffing.AssistanceTeamDrawn,
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    people = frozenset(member.person_id for member in event.members)
    return LETTER, event.letter_id, {"formed": str(bool(event.members)).lower()}, people


def _answered(
    event: collaboration.AssistanceAnswered,
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    # Never the findings: the answer is read on the case file, where reading it is audited.
    facts = _facts(event, "letter_id", "answered_by_county", "kind")
    return CASE, event.case_id, facts, frozenset()


def _letter_due(
    event: collaboration.LetterDueSoon,
) -> tuple[str, str, dict[str, str], frozenset[str]]:
    facts = _facts(event, "direction", "counterpart_county", "kind", "due_date")
    return LETTER, event.letter_id, facts, frozenset()


Reading = Callable[[Any], tuple[str, str, dict[str, str], frozenset[str]]]
_READINGS: dict[type[IntegrationEvent], Reading] = {
    cases.DeadlineApproaching: _deadline,
    cases.DeadlineBreached: _deadline,
    cases.StageChanged: _step,
    cases.ClueDisposed: _step,
    cases.CaseFiled: _step,
    cases.ExtensionGranted: _step,
    cases.CaseDecided: _step,
    cases.CaseTransferred: _step,
    cases.CaseClosed: _step,
    staffing.TeamAssigned: _assigned,
    staffing.TeamUnfillable: _unfillable,
    staffing.DrawOverridden: _overridden,
    staffing.AssignmentDeclined: _declined,
    staffing.AssistanceTeamDrawn: _assistance_team,
    collaboration.AssistanceAnswered: _answered,
    collaboration.LetterDueSoon: _letter_due,
    collaboration.LetterOverdue: _letter_due,
}
# By CloudEvents type, so a record is recognised by its header whatever topic it came on.
READINGS: dict[str, Reading] = {cls.event_type: read for cls, read in _READINGS.items()}


def notice_of(headers: Sequence[tuple[str, bytes]], value: bytes | None) -> Notice | None:
    """The notice a Kafka record makes, or None (not a notice type, or unreadable)."""
    try:
        envelope = Envelope.from_kafka(headers, value)
    except EnvelopeError:
        return None
    reading = READINGS.get(envelope.type)
    if reading is None:
        return None
    try:
        event = EVENT_TYPES[envelope.type].read(envelope.data)
    except (ValidationError, ValueError):
        # The owning service's consumers dead-letter it; the console only stays quiet.
        return None
    kind, subject_id, facts, named = reading(event)
    return Notice(
        event_id=envelope.id,
        what=envelope.type.split(".")[2],
        county_id=event.county_id,
        zone_id=event.zone_id,
        subject_kind=kind,
        subject_id=subject_id,
        occurred_at=envelope.time,
        facts=facts,
        named=named,
    )


@dataclass(frozen=True)
class Viewer:
    """The signed-in user a connection serves: who, which county, and their own token."""

    subject: str
    county_id: str
    token: str = field(repr=False)


class Gate(Protocol):
    """Asks the owning service whether a viewer may read a subject (with the viewer's token).

    True: the read succeeded; False: refused or not found. Any other failure (a service down)
    raises, so the answer is not remembered and the notice is withheld.
    """

    async def may_read(self, viewer: Viewer, kind: str, subject_id: str) -> bool: ...


class Audience:
    """Decides, for one connection, which notices its viewer may receive."""

    def __init__(
        self,
        viewer: Viewer,
        gate: Gate,
        *,
        hold_seconds: float = VERDICT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.viewer = viewer
        self._gate = gate
        self._hold = hold_seconds
        self._clock = clock
        self._verdicts: dict[tuple[str, str], tuple[float, bool]] = {}

    async def admits(self, notice: Notice) -> bool:
        """Whether to forward `notice`: same county, and named in it or allowed to read it."""
        if notice.county_id != self.viewer.county_id:
            return False
        if self.viewer.subject in notice.named:
            return True
        key = (notice.subject_kind, notice.subject_id)
        now = self._clock()
        held = self._verdicts.get(key)
        if held is not None and now - held[0] < self._hold:
            return held[1]
        try:
            allowed = await self._gate.may_read(self.viewer, *key)
        except Exception:
            log.warning("live: could not check %s %s; notice withheld", *key, exc_info=True)
            return False
        self._verdicts[key] = (now, allowed)
        return allowed


class LiveMetrics:
    """Counters of the live feed, on the console's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notices = Counter(
            "xiezuo_console_live_notices",
            "Notices read from Kafka, by event type.",
            ["what"],
            registry=registry,
        )
        self.forwarded = Counter(
            "xiezuo_console_live_forwarded",
            "Notices sent to a connection whose user may see them.",
            registry=registry,
        )
        self.dropped = Counter(
            "xiezuo_console_live_dropped",
            "Notices dropped because a connection did not keep up.",
            registry=registry,
        )
        self.connections = Gauge(
            "xiezuo_console_live_connections",
            "Open server-sent-events connections.",
            registry=registry,
        )


class LiveFeed:
    """Reads the notice topics from their end and hands every notice to every subscriber."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topics: Sequence[str] = NOTICE_TOPICS,
        client_id: str = "xiezuo-console-live",
        security: KafkaSecurity | None = None,
        metrics: LiveMetrics | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self._bootstrap = bootstrap
        self.topics = tuple(topics)
        self._client_id = client_id
        self._security = security
        self.metrics = metrics
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Notice]] = set()
        self._task: asyncio.Task[None] | None = None
        # Set once every partition's position is known: records published after are delivered.
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Start reading in the background (the broker may come later: it keeps trying)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-live-feed")

    async def stop(self) -> None:
        """Stop reading."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[Notice]]:
        """A queue receiving every notice from now until the block ends."""
        queue: asyncio.Queue[Notice] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        if self.metrics is not None:
            self.metrics.connections.inc()
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            if self.metrics is not None:
                self.metrics.connections.dec()

    def deliver(self, notice: Notice) -> None:
        """Hand `notice` to every subscriber, dropping a lagging one's oldest."""
        if self.metrics is not None:
            self.metrics.notices.labels(notice.what).inc()
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                if self.metrics is not None:
                    self.metrics.dropped.inc()
            queue.put_nowait(notice)

    async def _run(self) -> None:
        delay = RECONNECT_SECONDS[0]
        while True:
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                # Topics created after the console started are read within seconds.
                metadata_max_age_ms=5000,
                **client_kwargs(self._security),
            )
            try:
                await consumer.start()
                delay = RECONNECT_SECONDS[0]
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for records in batches.values():
                        for record in records:
                            notice = notice_of(list(record.headers or ()), record.value)
                            if notice is not None:
                                self.deliver(notice)
                    if not self.ready.is_set() and consumer.assignment():
                        await self._positions_known(consumer)
            except KafkaError as error:
                self.ready.clear()
                log.warning("live: Kafka unavailable (%s); retrying in %.1f s", error, delay)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_SECONDS[1])

    async def _positions_known(self, consumer: AIOKafkaConsumer) -> None:
        # "latest" is resolved lazily; resolving it now is what makes `ready` mean something.
        for partition in consumer.assignment():
            await consumer.position(partition)
        self.ready.set()


def sse(event: str, data: Mapping[str, Any], *, event_id: str | None = None) -> str:
    """One server-sent event."""
    lines = [f"event: {event}"]
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


async def notices_for(
    feed: LiveFeed,
    audience: Audience,
    render: Callable[[Notice], Mapping[str, Any]],
    *,
    disconnected: Callable[[], Awaitable[bool]],
    keepalive: float = KEEPALIVE_SECONDS,
    metrics: LiveMetrics | None = None,
) -> AsyncIterator[str]:
    """The event stream of one connection: its viewer's notices, and a comment when quiet."""
    with feed.subscription() as queue:
        # Sent at once, so a client (and a test) knows the subscription is in place.
        yield ": subscribed\n\n"
        while not await disconnected():
            try:
                notice = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if not await audience.admits(notice):
                continue
            if metrics is not None:
                metrics.forwarded.inc()
            yield sse("notice", render(notice), event_id=notice.event_id)


class ServiceGate:
    """A Gate over the services' own reads: GetCase, GetRectification, GetLetter."""

    # Refusals: the viewer may not read it (or it is another county's, answered NOT_FOUND).
    REFUSED = frozenset(
        {
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.UNAUTHENTICATED,
        }
    )

    def __init__(
        self, cases_channel: grpc.aio.Channel, collaboration_channel: grpc.aio.Channel
    ) -> None:
        self._cases = cases_pb2_grpc.CaseServiceStub(cases_channel)
        self._letters = collaboration_pb2_grpc.CollaborationServiceStub(collaboration_channel)

    async def may_read(self, viewer: Viewer, kind: str, subject_id: str) -> bool:
        """Read the subject as the viewer; a refusal is False, any other error raises."""
        metadata = (("authorization", f"Bearer {viewer.token}"),)
        try:
            if kind == CASE:
                await self._cases.GetCase(
                    cases_pb2.GetCaseRequest(case_id=subject_id),
                    metadata=metadata,
                    timeout=READ_SECONDS,
                )
            elif kind == RECTIFICATION:
                await self._cases.GetRectification(
                    cases_pb2.GetRectificationRequest(item_id=subject_id),
                    metadata=metadata,
                    timeout=READ_SECONDS,
                )
            elif kind == LETTER:
                await self._letters.GetLetter(
                    collaboration_pb2.GetLetterRequest(letter_id=subject_id),
                    metadata=metadata,
                    timeout=READ_SECONDS,
                )
            else:
                return False
        except grpc.aio.AioRpcError as error:
            if error.code() in self.REFUSED:
                return False
            raise
        return True
