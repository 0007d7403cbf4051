"""The demo county and its neighbour exchange assistance letters (协查函) over gRPC.

Each county acts with its own tokens: the demo county's leadership asks and approves, the
neighbour's leadership accepts or declines, its case workers answer. Collaboration has no
back-entry date, so the letters are dated the day the demo runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from xiezuo.collaboration.v1 import collaboration_pb2 as pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc, transfers_pb2, transfers_pb2_grpc

from services.demo.network import CITY_ID, DEMO_COUNTY, NEIGHBOUR_COUNTY

# Seconds to wait for the other county's side of one step (a record over the broker).
_STEP_TIMEOUT = 120.0
_POLL = 0.5

# county id → token for that county's leadership (the city's id: the city commission); the
# demo mints these with the platform's dev key.
TokenFor = Callable[[str], str]


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
    ),
    ScriptedLetter(
        pb.LETTER_KIND_REGISTRY_CHECK,
        "请查询被反映人名下不动产登记情况",
        {"subject_name": "孙某", "registry": "不动产登记中心", "record_reference": "青峪不动产"},
        findings="经查询，孙某名下在本县登记住宅一套，无其他不动产。",
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
    ),
)


@dataclass(frozen=True)
class LetterRecord:
    """How one letter ended, as the asking county holds it."""

    letter_id: str
    kind: str
    state: str
    team_size: int
    # Seconds from the demo county's approval to the answer it verified; None if not answered.
    approval_to_answer: float | None


@dataclass(frozen=True)
class LettersYear:
    """The letters between the two counties, and the clue transfer if one was made."""

    letters: tuple[LetterRecord, ...]
    transfer_id: str = ""
    # The clue the city commission designated 青峪县 to handle (指定管辖).
    designation_id: str = ""

    @property
    def sent(self) -> int:
        return len(self.letters)

    @property
    def answered(self) -> int:
        return sum(1 for letter in self.letters if letter.state == "LETTER_STATE_ANSWERED")

    @property
    def declined(self) -> int:
        return sum(1 for letter in self.letters if letter.state == "LETTER_STATE_DECLINED")

    @property
    def median_seconds(self) -> float | None:
        times = [x.approval_to_answer for x in self.letters if x.approval_to_answer is not None]
        return statistics.median(times) if times else None


async def exchange_letters(
    address: str, token_for: TokenFor, cases: Sequence[tuple[str, str]]
) -> LettersYear:
    """Send one scripted letter from each of `cases` (case id, zone) and see each through."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = collaboration_pb2_grpc.CollaborationServiceStub(channel)
        exchange = _Exchange(stub, token_for)
        records = await asyncio.gather(
            *(
                exchange.run(script, case_id, zone_id, index)
                for index, (script, (case_id, zone_id)) in enumerate(
                    zip(LETTERS, cases, strict=False)
                )
            )
        )
        transfer = transfers_pb2_grpc.TransferServiceStub(channel)
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
    return LettersYear(
        letters=tuple(records),
        transfer_id=reply.transfer_id,
        designation_id=designated.transfer_id,
    )


class _Exchange:
    def __init__(
        self, stub: collaboration_pb2_grpc.CollaborationServiceStub, token_for: TokenFor
    ) -> None:
        self._stub = stub
        self._asking = _auth(token_for(DEMO_COUNTY))
        self._asked = _auth(token_for(NEIGHBOUR_COUNTY))

    async def run(
        self, script: ScriptedLetter, case_id: str, zone_id: str, index: int
    ) -> LetterRecord:
        key = f"demo-letter-{index + 1}"
        drafted = await self._stub.RequestLetter(
            pb.RequestLetterRequest(
                idempotency_key=key,
                county_id=DEMO_COUNTY,
                zone_id=zone_id,
                case_id=case_id,
                target_county_id=NEIGHBOUR_COUNTY,
                kind=script.kind,  # type: ignore[arg-type]
                question=script.question,
                fields=script.fields,
            ),
            metadata=self._asking,
            timeout=30,
        )
        letter_id = drafted.letter.letter_id
        await self._stub.ApproveLetter(
            pb.ApproveLetterRequest(idempotency_key=f"{key}-approve", letter_id=letter_id),
            metadata=self._asking,
            timeout=30,
        )
        await self._side(letter_id, self._asked, lambda _: True, "receive the letter")
        await self._stub.DecideLetter(
            pb.DecideLetterRequest(
                idempotency_key=f"{key}-decide",
                letter_id=letter_id,
                accept=not script.decline_ground,
                ground=script.decline_ground,
                subject_township_id=script.subject_township,
            ),
            metadata=self._asked,
            timeout=30,
        )
        team = 0
        if not script.decline_ground:
            # The neighbour's staffing draws the letter's team; answered only once it has one,
            # so answering frees the team drawn (not one drawn after the answer).
            asked = await self._side(
                letter_id,
                self._asked,
                lambda x: bool(x.team_draw_id or x.team_unfillable_reasons),
                "draw the letter's team",
            )
            team = len(asked.team_person_ids)
            await self._stub.AnswerLetter(
                pb.AnswerLetterRequest(
                    idempotency_key=f"{key}-answer", letter_id=letter_id, findings=script.findings
                ),
                metadata=self._asked,
                timeout=30,
            )
        final = pb.LETTER_STATE_DECLINED if script.decline_ground else pb.LETTER_STATE_ANSWERED
        mine = await self._side(
            letter_id, self._asking, lambda x: x.state == final, "see the neighbour's reply"
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
