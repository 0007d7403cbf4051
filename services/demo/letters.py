"""The demo county and its neighbour exchange assistance letters (协查函) both ways over gRPC.

Each county acts with its own tokens: the asking county's leadership asks and approves, the
asked county's leadership accepts or declines and answers. 青峪县 works the clues 演示县
handed over, so 演示县's trail of them fills. 演示县's letters are entered after the fact
(补录, `effective_at`) on paper dates through the year, days after their case entered a
working stage; 青峪县's, about clues handed over today, are dated today.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.collaboration.v1 import collaboration_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc, transfers_pb2, transfers_pb2_grpc

from services.cases.domain.rules import DEFAULT_RULES
from services.demo.network import CITY_ID, DEMO_COUNTY, NEIGHBOUR_COUNTY

# Seconds to wait for the other county's side of one step (a record over the broker).
_STEP_TIMEOUT = 120.0
_POLL = 0.5

# county id → token for that county's leadership (the city's id: the city commission); the
# demo mints these with the platform's dev key.
TokenFor = Callable[..., str]
# (county id, role) → token for a person of that county in that role (its case officers).
RoleTokenFor = Callable[[str, str], str]
T = TypeVar("T")


@dataclass(frozen=True)
class ScriptedLetter:
    """One letter of the year: what the demo county asks and how the neighbour responds."""

    kind: int
    question: str
    fields: dict[str, str]
    # Empty: the neighbour accepts and answers; else it declines on this ground.
    decline_ground: str = ""
    subject_township: str = ""
    findings: str = ""
    # On paper: days from the asked county's acceptance to its answer.
    days_to_answer: int = 5


LETTERS: tuple[ScriptedLetter, ...] = (
    ScriptedLetter(
        pb.LETTER_KIND_VERIFY_FACT,
        "请核实被反映人2024年至2025年在贵县石门镇任职期间的分工情况",
        {
            "subject_name": "周某",
            "subject_position": "副镇长",
            "subject_employer": "石门镇人民政府",
        },
        subject_township="qy-t1",
        findings="经核实，周某2024年3月至2025年6月分管农业农村工作，有任职文件为证。",
        days_to_answer=4,
    ),
    ScriptedLetter(
        pb.LETTER_KIND_WITNESS_STATEMENT,
        "请协助询问证人关于惠民资金发放的经过",
        {
            "subject_name": "陈某",
            "witness_name": "刘某",
            "witness_employer": "柳河镇财政所",
            "topics": "惠民资金发放",
        },
        subject_township="qy-t2",
        findings="已询问证人刘某，制作询问笔录一份，证人陈述资金按名册发放。",
        days_to_answer=9,
    ),
    ScriptedLetter(
        pb.LETTER_KIND_REGISTRY_CHECK,
        "请查询被反映人名下不动产登记情况",
        {"subject_name": "孙某", "registry": "不动产登记中心", "record_reference": "青峪不动产"},
        findings="经查询，孙某名下在本县登记住宅一套，无其他不动产。",
        days_to_answer=2,
    ),
    ScriptedLetter(
        pb.LETTER_KIND_LOCATE_PERSON,
        "请协助查找被反映人目前住址",
        {"subject_name": "赵某", "last_known_address": "青峪县白杨乡"},
        decline_ground="该人员户籍已于2023年迁出本县，请向其现户籍地协查",
    ),
    ScriptedLetter(
        pb.LETTER_KIND_VERIFY_FACT,
        "请核实被反映人在贵县承揽工程项目的情况",
        {"subject_name": "吴某", "subject_employer": "青峪县交通运输局"},
        subject_township="qy-t3",
        findings="经核实，吴某所在单位2025年承揽乡村道路项目两项，合同及验收资料已调取。",
        days_to_answer=6,
    ),
)


# What 青峪县 asks 演示县 about the two clues it took over (its subjects' ties to 演示县).
NEIGHBOUR_LETTERS: tuple[ScriptedLetter, ...] = (
    ScriptedLetter(
        pb.LETTER_KIND_REGISTRY_CHECK,
        "请查询被反映人郑某在贵县名下的不动产登记情况",
        {"subject_name": "郑某", "registry": "不动产登记中心", "record_reference": "演示县不动产"},
        subject_township="t-02",
        findings="经查询，郑某在本县无不动产登记记录。",
    ),
    ScriptedLetter(
        pb.LETTER_KIND_WITNESS_STATEMENT,
        "请协助询问证人关于水利项目招标的经过",
        {
            "subject_name": "钱某",
            "witness_name": "孙某",
            "witness_employer": "演示县水利工程公司",
            "topics": "水利项目招标",
        },
        subject_township="t-05",
        findings="已询问证人孙某，制作询问笔录一份，证人陈述招标前曾与钱某见面。",
    ),
)
# Stages in which a case asks for help (a letter is dated while the case is in one).
_WORKING = frozenset({"inquiry", "verification", "investigation", "hearing"})
# A letter is asked this long after its case entered a working stage ...
_ASK_AFTER = timedelta(days=3)
# ... when it can have been answered on paper before today (asked, decided, answered).
_LONGEST_LETTER = timedelta(days=20)
# How a handed-over clue's first steps are taken in the county that received it (cadre level →
# the disposal way its officers propose; the approvers come from the cases rule book).
_DISPOSAL_WAY = {"village": "inquiry", "county_section": "preliminary_verification"}


@dataclass(frozen=True)
class LetterRecord:
    """How one letter ended, as the asking county holds it."""

    letter_id: str
    kind: str
    state: str
    team_size: int
    # Seconds from the asking county's approval to the answer it verified; None if not answered.
    approval_to_answer: float | None
    from_county: str = DEMO_COUNTY
    to_county: str = NEIGHBOUR_COUNTY
    # The asking county's approval, as entered (a paper date for the demo county's letters).
    approved_at: datetime | None = None


@dataclass(frozen=True)
class HandedOver:
    """A clue 演示县 handed to 青峪县 (线索移送) or the city designated there (指定管辖)."""

    transfer_id: str
    mode: str
    # Where it stands in 青峪县, and the steps 青峪县 reported back (演示县's trail).
    stage: str = ""
    trail: tuple[str, ...] = ()


@dataclass(frozen=True)
class LettersYear:
    """The letters between the two counties (both ways), and the clues handed over."""

    letters: tuple[LetterRecord, ...]
    transfer_id: str = ""
    # The clue the city commission designated 青峪县 to handle (指定管辖).
    designation_id: str = ""
    handed_over: tuple[HandedOver, ...] = ()

    def asked_by(self, county: str) -> tuple[LetterRecord, ...]:
        """The letters `county` sent."""
        return tuple(letter for letter in self.letters if letter.from_county == county)

    @property
    def sent(self) -> int:
        return len(self.asked_by(DEMO_COUNTY))

    @property
    def answered(self) -> int:
        return _count(self.asked_by(DEMO_COUNTY), "LETTER_STATE_ANSWERED")

    @property
    def declined(self) -> int:
        return _count(self.asked_by(DEMO_COUNTY), "LETTER_STATE_DECLINED")

    @property
    def received(self) -> int:
        """Letters 青峪县 sent 演示县."""
        return len(self.asked_by(NEIGHBOUR_COUNTY))

    @property
    def answered_by_us(self) -> int:
        return _count(self.asked_by(NEIGHBOUR_COUNTY), "LETTER_STATE_ANSWERED")

    @property
    def median_seconds(self) -> float | None:
        """Median approval → answer of 演示县's letters (their paper dates when entered so)."""
        times = [
            x.approval_to_answer
            for x in self.asked_by(DEMO_COUNTY)
            if x.approval_to_answer is not None
        ]
        return statistics.median(times) if times else None


def _count(letters: Sequence[LetterRecord], state: str) -> int:
    return sum(1 for letter in letters if letter.state == state)


async def exchange_letters(
    address: str,
    token_for: TokenFor,
    cases: Sequence[tuple[str, str]],
    *,
    cases_address: str = "",
) -> LettersYear:
    """The year between the counties, each acting with its own tokens.

    演示县 hands one clue to 青峪县 and the city designates another there; 青峪县's officers
    take their first steps (its trail comes back to 演示县). Then the letters cross both
    ways at once: five from `cases` (演示县's candidate case ids and zones; those whose paper
    days spread best over the year) to 青峪县, and one from each of the two clues 青峪县 took
    over to 演示县.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        stub = collaboration_pb2_grpc.CollaborationServiceStub(channel)
        transfer = transfers_pb2_grpc.TransferServiceStub(channel)
        handed = await _hand_over(transfer, token_for)
        taken: list[tuple[str, str, str]] = []
        if cases_address:
            async with grpc.aio.insecure_channel(cases_address) as cases_channel:
                worked = _NeighbourWork(cases_pb2_grpc.CaseServiceStub(cases_channel), token_for)
                taken = [await worked.take_over(clue_id, level) for clue_id, level, _ in handed]
        asked_on: dict[str, datetime] = {}
        if cases_address:
            async with grpc.aio.insecure_channel(cases_address) as cases_channel:
                case_stub = cases_pb2_grpc.CaseServiceStub(cases_channel)
                for case_id, _ in cases:
                    moment = await _asked_on(case_stub, token_for, case_id)
                    if moment is not None:
                        asked_on[case_id] = moment
            cases = spread_over_the_year(cases, asked_on, len(LETTERS))
        exchange = _Exchange(stub, token_for)
        runs = [
            exchange.run(
                script, case_id, zone_id, f"demo-letter-{index + 1}", on=asked_on.get(case_id)
            )
            for index, (script, (case_id, zone_id)) in enumerate(zip(LETTERS, cases, strict=False))
        ] + [
            exchange.run(
                script,
                case_id,
                zone_id,
                f"neighbour-letter-{index + 1}",
                asking=NEIGHBOUR_COUNTY,
                asked=DEMO_COUNTY,
            )
            for index, (script, (case_id, zone_id, _)) in enumerate(
                zip(NEIGHBOUR_LETTERS, taken, strict=False)
            )
        ]
        records = await asyncio.gather(*runs)
        over = [
            await _trail(transfer, token_for, clue_id, mode, expect=2 if taken else 0)
            for clue_id, _, mode in handed
        ]
    stages = {clue_id: stage for clue_id, _, stage in taken}
    return LettersYear(
        letters=tuple(records),
        transfer_id=handed[0][0],
        designation_id=handed[1][0],
        handed_over=tuple(
            HandedOver(h.transfer_id, h.mode, stages.get(h.transfer_id, ""), h.trail) for h in over
        ),
    )


def spread_over_the_year(
    cases: Sequence[tuple[str, str]], asked_on: Mapping[str, datetime], count: int
) -> list[tuple[str, str]]:
    """`count` of `cases`, their letters' paper days as evenly spread as the year allows.

    Cases without a paper day (none early enough) only fill up when too few have one.
    """
    dated = sorted((c for c in cases if c[0] in asked_on), key=lambda c: asked_on[c[0]])
    if len(dated) <= count:
        rest = [c for c in cases if c[0] not in asked_on]
        return [*dated, *rest][:count]
    last = len(dated) - 1
    return [dated[round(index * last / (count - 1))] for index in range(count)]


async def _asked_on(
    stub: cases_pb2_grpc.CaseServiceStub, token_for: TokenFor, case_id: str
) -> datetime | None:
    """The paper day a letter is asked from the case: days after it entered a working stage.

    None when the case has no such step early enough for the letter to be answered by now
    (then the letter is dated the run day).
    """
    reply = await stub.GetCase(
        cases_pb2.GetCaseRequest(case_id=case_id),
        metadata=_auth(token_for(DEMO_COUNTY, "zone_chief")),
        timeout=30,
    )
    working = [
        step.at.ToDatetime(tzinfo=UTC) for step in reply.history if step.to_stage in _WORKING
    ]
    if not working:
        return None
    asked = working[0] + _ASK_AFTER
    return asked if asked + _LONGEST_LETTER < datetime.now(UTC) else None


def _paper_dates(on: datetime, script: ScriptedLetter) -> dict[str, Timestamp]:
    """Each step's paper moment: approved the same day, decided in two, answered in days."""
    decided = on + timedelta(days=2)
    moments = {
        "request": on,
        "approve": on + timedelta(hours=3),
        "decide": decided,
        "answer": decided + timedelta(days=script.days_to_answer),
    }
    stamps: dict[str, Timestamp] = {}
    for step, moment in moments.items():
        stamp = Timestamp()
        stamp.FromDatetime(moment)
        stamps[step] = stamp
    return stamps


async def _hand_over(
    transfer: transfers_pb2_grpc.TransferServiceStub, token_for: TokenFor
) -> list[tuple[str, str, str]]:
    """(clue id in 青峪县, subject's cadre level, mode) of the transfer and the designation."""
    reply = await transfer.TransferClue(
        transfers_pb2.TransferClueRequest(
            idempotency_key="demo-transfer-1",
            county_id=DEMO_COUNTY,
            target_county_id=NEIGHBOUR_COUNTY,
            fields={
                "subject_name": "郑某",
                "subject_position": "村委会主任",
                "township_of_jurisdiction": "qy-t2",
                "subject_cadre_level": "village",
                "allegation_category": "favoritism_in_subsidies",
            },
            excerpt="反映郑某在柳河镇任职期间截留惠民补贴，被反映人属青峪县管辖。",
        ),
        metadata=_auth(token_for(DEMO_COUNTY)),
        timeout=30,
    )
    designated = await transfer.DesignateJurisdiction(
        transfers_pb2.DesignateJurisdictionRequest(
            idempotency_key="demo-designation-1",
            from_county_id=DEMO_COUNTY,
            target_county_id=NEIGHBOUR_COUNTY,
            fields={
                "subject_name": "钱某",
                "subject_position": "县水利局副局长",
                "subject_cadre_level": "county_section",
                "allegation_category": "abuse_of_power",
            },
            excerpt="被反映人与演示县多名干部存在利害关系，市纪委监委指定青峪县管辖。",
        ),
        metadata=_auth(token_for(CITY_ID)),
        timeout=30,
    )
    return [
        (reply.transfer_id, "village", "transfer"),
        (designated.transfer_id, "county_section", "designation"),
    ]


class _NeighbourWork:
    """青峪县's officers on a clue handed to them: disposal proposed, then approved."""

    def __init__(self, stub: cases_pb2_grpc.CaseServiceStub, token_for: RoleTokenFor) -> None:
        self._stub = stub
        self._token_for = token_for

    def _as(self, role: str) -> tuple[tuple[str, str], ...]:
        return _auth(self._token_for(NEIGHBOUR_COUNTY, role))

    async def take_over(self, clue_id: str, cadre_level: str) -> tuple[str, str, str]:
        """Its first steps in 青峪县; (clue id, zone, stage it is in now) for its letter."""
        found = await _poll(
            lambda: self._case(clue_id), f"clue {clue_id} to arrive in {NEIGHBOUR_COUNTY}"
        )
        await self._act(
            clue_id, "deputy_chief", "propose_disposal", _DISPOSAL_WAY.get(cadre_level, "inquiry")
        )
        for role in DEFAULT_RULES.approvers("disposal", cadre_level):
            await self._act(clue_id, role, "approve_disposal")
        now = await self._case(clue_id)
        return clue_id, found.zone_id, now.stage if now is not None else ""

    async def _case(self, clue_id: str) -> cases_pb2.CaseSummary | None:
        reply = await self._stub.GetCase(
            cases_pb2.GetCaseRequest(case_id=clue_id),
            metadata=self._as("zone_chief"),
            timeout=30,
        )
        summary: cases_pb2.CaseSummary = reply.case
        return summary

    async def _act(self, clue_id: str, role: str, action: str, choice: str = "") -> None:
        await self._stub.ActOnCase(
            cases_pb2.ActOnCaseRequest(
                idempotency_key=f"neighbour-{clue_id}-{action}",
                case_id=clue_id,
                action=action,
                choice=choice,
            ),
            metadata=self._as(role),
            timeout=30,
        )


async def _trail(
    transfer: transfers_pb2_grpc.TransferServiceStub,
    token_for: TokenFor,
    clue_id: str,
    mode: str,
    *,
    expect: int,
) -> HandedOver:
    """The sending county's read-only trail once `expect` steps came back (or as it stands)."""

    async def steps() -> transfers_pb2.GetTransferTrailResponse | None:
        reply: transfers_pb2.GetTransferTrailResponse = await transfer.GetTransferTrail(
            transfers_pb2.GetTransferTrailRequest(transfer_id=clue_id),
            metadata=_auth(token_for(DEMO_COUNTY)),
            timeout=30,
        )
        return reply if len(reply.steps) >= expect else None

    reply = await _poll(steps, f"the trail of {clue_id} to come back")
    return HandedOver(clue_id, mode, trail=tuple(step.stage for step in reply.steps))


async def _poll(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """`probe` until it returns something (NOT_FOUND: not yet); TimeoutError after a while."""
    deadline = time.monotonic() + _STEP_TIMEOUT
    while True:
        try:
            found = await probe()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            found = None
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited too long for {what}")
        await asyncio.sleep(_POLL)


class _Exchange:
    def __init__(
        self, stub: collaboration_pb2_grpc.CollaborationServiceStub, token_for: TokenFor
    ) -> None:
        self._stub = stub
        self._token_for = token_for

    async def run(
        self,
        script: ScriptedLetter,
        case_id: str,
        zone_id: str,
        key: str,
        *,
        asking: str = DEMO_COUNTY,
        asked: str = NEIGHBOUR_COUNTY,
        on: datetime | None = None,
    ) -> LetterRecord:
        """One letter seen through; `on`: entered after the fact (补录), asked that day."""
        asking_auth = _auth(self._token_for(asking))
        asked_auth = _auth(self._token_for(asked))
        dates = _paper_dates(on, script) if on is not None else {}
        drafted = await self._stub.RequestLetter(
            pb.RequestLetterRequest(
                idempotency_key=key,
                county_id=asking,
                zone_id=zone_id,
                case_id=case_id,
                target_county_id=asked,
                kind=script.kind,  # type: ignore[arg-type]
                question=script.question,
                fields=script.fields,
                effective_at=dates.get("request"),
            ),
            metadata=asking_auth,
            timeout=30,
        )
        letter_id = drafted.letter.letter_id
        await self._stub.ApproveLetter(
            pb.ApproveLetterRequest(
                idempotency_key=f"{key}-approve",
                letter_id=letter_id,
                effective_at=dates.get("approve"),
            ),
            metadata=asking_auth,
            timeout=30,
        )
        await self._side(letter_id, asked_auth, lambda _: True, "receive the letter")
        await self._stub.DecideLetter(
            pb.DecideLetterRequest(
                idempotency_key=f"{key}-decide",
                letter_id=letter_id,
                accept=not script.decline_ground,
                ground=script.decline_ground,
                subject_township_id=script.subject_township,
                effective_at=dates.get("decide"),
            ),
            metadata=asked_auth,
            timeout=30,
        )
        team = 0
        if not script.decline_ground:
            # The asked county's staffing draws the letter's team; answered only once it has
            # one, so answering frees the team drawn (not one drawn after the answer).
            drawn = await self._side(
                letter_id,
                asked_auth,
                lambda x: bool(x.team_draw_id or x.team_unfillable_reasons),
                "draw the letter's team",
            )
            team = len(drawn.team_person_ids)
            await self._stub.AnswerLetter(
                pb.AnswerLetterRequest(
                    idempotency_key=f"{key}-answer",
                    letter_id=letter_id,
                    findings=script.findings,
                    effective_at=dates.get("answer"),
                ),
                metadata=asked_auth,
                timeout=30,
            )
        final = pb.LETTER_STATE_DECLINED if script.decline_ground else pb.LETTER_STATE_ANSWERED
        mine = await self._side(
            letter_id, asking_auth, lambda x: x.state == final, "see the other county's reply"
        )
        elapsed = None
        if mine.state == pb.LETTER_STATE_ANSWERED:
            elapsed = (
                mine.answered_at.ToDatetime() - mine.approved_at.ToDatetime()
            ).total_seconds()
        return LetterRecord(
            letter_id=letter_id,
            kind=pb.LetterKind.Name(script.kind),  # type: ignore[arg-type]
            state=pb.LetterState.Name(mine.state),
            team_size=team,
            approval_to_answer=elapsed,
            from_county=asking,
            to_county=asked,
            approved_at=mine.approved_at.ToDatetime(tzinfo=UTC),
        )

    async def _side(
        self,
        letter_id: str,
        metadata: tuple[tuple[str, str], ...],
        ready: Callable[[pb.Letter], bool],
        step: str,
    ) -> pb.Letter:
        """Poll one county's side of the letter until `ready` (the record crossed the broker)."""
        deadline = time.monotonic() + _STEP_TIMEOUT
        while True:
            try:
                reply = await self._stub.GetLetter(
                    pb.GetLetterRequest(letter_id=letter_id), metadata=metadata, timeout=30
                )
                if ready(reply.letter):
                    return reply.letter
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"letter {letter_id}: the counties did not {step} in time")
            await asyncio.sleep(_POLL)


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
