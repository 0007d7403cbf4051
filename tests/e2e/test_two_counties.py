"""Two counties as two deployments on one broker: each its own cases, staffing and collaboration
processes, databases, consumer groups, token key and signing key.

演示县 (c-demo) and 青峪县 (c-qingyu) share a broker of this module's own (`own_kafka`: on
the session broker the default groups have the e2e stack's members). 青峪县 hands a clue
over; it arrives as a clue in 演示县, whose officers act on it, and the steps come back to
青峪县's read-only trail. 演示县 then asks 青峪县 for help on that case: approved, verified,
accepted, a team drawn from 青峪县's own pool (not from the subject's township), answered,
and the answer lands in the case's history in 演示县.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.collaboration.v1 import collaboration_pb2 as letters_pb
from xiezuo.collaboration.v1 import collaboration_pb2_grpc, transfers_pb2, transfers_pb2_grpc

from services.demo.network import (
    DEMO_COUNTY,
    NEIGHBOUR_COUNTY,
    NEIGHBOUR_COUNTY_FILE,
    network_yaml,
)
from services.runtime.localstack import KafkaNode
from services.runtime.tokens import ALL_ZONES, ensure_dev_keypair, mint_dev_token
from tests.e2e.conftest import (
    READY_TIMEOUT,
    REPO_ROOT,
    STOP_TIMEOUT,
    ServiceProcess,
    _await_ready,
    _log_files,
    _stop,
    base_env,
)

T = TypeVar("T")
# The processes of one county's deployment (intake is not needed: the clue is transferred).
DEPLOYED = ("cases", "staffing", "collaboration")
WAIT_SECONDS = 90.0


@dataclass
class County:
    """One county's deployment: its state dir (keys, SQLite databases) and its processes."""

    county_id: str
    state_dir: Path
    env: dict[str, str]
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def auth(self, role: str, subject: str = "") -> tuple[tuple[str, str], ...]:
        """Call metadata for a person of this county in `role` (its own token key)."""
        token = mint_dev_token(
            key_dir=self.state_dir / "keys",
            subject=subject or f"{self.county_id}-{role}",
            roles=[role],
            county_id=self.county_id,
            zone_ids=[ALL_ZONES],
        )
        return (("authorization", f"Bearer {token}"),)

    def grpc(self, service: str) -> str:
        return self.services[service].grpc


async def _xiezuo(env: dict[str, str], *args: str) -> str:
    """`xiezuo ARGS` as its own process in the county's environment; its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, (args, err.decode(errors="replace")[-2000:])
    return out.decode()


async def _serve(county: County, name: str, log_dir: Path) -> ServiceProcess:
    env = {
        **county.env,
        f"XIEZUO_{name.upper()}_GRPC_PORT": "0",
        f"XIEZUO_{name.upper()}_METRICS_PORT": "0",
    }
    stdout_path = log_dir / f"{county.county_id}-{name}.stdout"
    stderr_path = log_dir / f"{county.county_id}-{name}.stderr"
    with _log_files(stdout_path, stderr_path) as (out, err):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli.main",
            "serve",
            name,
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    database = f"sqlite+aiosqlite:///{county.state_dir / 'db' / f'{name}.sqlite3'}"
    return ServiceProcess(name, process, stdout_path, stderr_path, database)


@pytest.fixture
async def counties(own_kafka: KafkaNode, tmp_path: Path) -> AsyncIterator[tuple[County, County]]:
    """Both deployments configured (keys, one network file, the neighbour's staff) and running."""
    made: list[County] = []
    for county_id in (DEMO_COUNTY, NEIGHBOUR_COUNTY):
        state_dir = tmp_path / county_id
        env = base_env(state_dir, own_kafka.bootstrap_servers)
        env.update(
            {
                # The two settings that let two deployments share a broker.
                "XIEZUO_KAFKA_GROUP_PREFIX": f"xiezuo-{county_id}",
                "XIEZUO_COUNTIES": json.dumps([county_id]),
                "XIEZUO_AUDIT_CHECKPOINT_SECONDS": "3600",
                # Letters' due dates need no scan here.
                "XIEZUO_COLLABORATION_DUE_SCAN_SECONDS": "3600",
            }
        )
        ensure_dev_keypair(state_dir / "keys")
        made.append(County(county_id, state_dir, env))
    demo, neighbour = made
    # Each county makes its own signing key; the network file lists both public keys.
    public = {
        county.county_id: await _xiezuo(
            county.env, "collaboration", "keygen", "--county", county.county_id
        )
        for county in made
    }
    network = tmp_path / "network.yaml"
    network.write_text(network_yaml(public), encoding="utf-8")
    await asyncio.gather(
        *(_xiezuo(c.env, "collaboration", "network", "import", str(network)) for c in made),
        # The neighbour's staff: an accepted letter draws its team from them.
        _xiezuo(neighbour.env, "staffing", "import", str(NEIGHBOUR_COUNTY_FILE)),
    )
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    try:
        for county in made:
            for name in DEPLOYED:
                county.services[name] = await _serve(county, name, log_dir)
        await asyncio.gather(
            *(
                _await_ready(service, READY_TIMEOUT)
                for county in made
                for service in county.services.values()
            )
        )
        yield demo, neighbour
    finally:
        stopped = await asyncio.gather(
            *(
                _stop(service, STOP_TIMEOUT)
                for county in made
                for service in county.services.values()
            )
        )
    problems = [problem for problem in stopped if problem]
    assert not problems, "\n\n".join(problems)


async def _until(
    what: str, probe: Callable[[], Awaitable[T | None]], within: float = WAIT_SECONDS
) -> T:
    """Poll `probe` until it returns something; NOT_FOUND counts as not yet."""
    deadline = time.monotonic() + within
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
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.3)


async def test_a_transfer_and_a_letter_between_two_deployments(
    counties: tuple[County, County], own_kafka: KafkaNode
) -> None:
    demo, neighbour = counties
    async with (
        grpc.aio.insecure_channel(demo.grpc("collaboration")) as demo_collab,
        grpc.aio.insecure_channel(neighbour.grpc("collaboration")) as neighbour_collab,
        grpc.aio.insecure_channel(demo.grpc("cases")) as demo_cases_channel,
    ):
        demo_letters = collaboration_pb2_grpc.CollaborationServiceStub(demo_collab)
        neighbour_letters = collaboration_pb2_grpc.CollaborationServiceStub(neighbour_collab)
        neighbour_transfers = transfers_pb2_grpc.TransferServiceStub(neighbour_collab)
        demo_cases = cases_pb2_grpc.CaseServiceStub(demo_cases_channel)

        # 青峪县 hands a clue over to 演示县, which has jurisdiction over the subject.
        handed = await neighbour_transfers.TransferClue(
            transfers_pb2.TransferClueRequest(
                idempotency_key=uuid.uuid4().hex,
                county_id=NEIGHBOUR_COUNTY,
                target_county_id=DEMO_COUNTY,
                fields={
                    "subject_name": "郑某",
                    "subject_position": "村委会主任",
                    "township_of_jurisdiction": "t-01",
                    "subject_cadre_level": "village",
                    "allegation_category": "favoritism_in_subsidies",
                },
                excerpt="反映郑某截留惠民补贴，被反映人属演示县管辖。",
            ),
            metadata=neighbour.auth("county_leadership"),
            timeout=30,
        )
        case_id = handed.transfer_id

        async def arrived() -> cases_pb2.GetCaseResponse | None:
            reply: cases_pb2.GetCaseResponse = await demo_cases.GetCase(
                cases_pb2.GetCaseRequest(case_id=case_id),
                metadata=demo.auth("zone_chief"),
                timeout=30,
            )
            return reply

        case = await _until("the transferred clue to arrive in 演示县's cases", arrived)
        assert case.case.county_id == DEMO_COUNTY
        # 演示县's officers act on it: a disposal proposed and approved (village: the zone chief).
        for role, action, choice in (
            ("deputy_chief", "propose_disposal", "inquiry"),
            ("zone_chief", "approve_disposal", ""),
        ):
            await demo_cases.ActOnCase(
                cases_pb2.ActOnCaseRequest(
                    idempotency_key=uuid.uuid4().hex, case_id=case_id, action=action, choice=choice
                ),
                metadata=demo.auth(role),
                timeout=30,
            )

        async def trail() -> list[tuple[str, str]] | None:
            reply = await neighbour_transfers.GetTransferTrail(
                transfers_pb2.GetTransferTrailRequest(transfer_id=case_id),
                metadata=neighbour.auth("county_leadership"),
                timeout=30,
            )
            steps = [(step.stage, step.decision) for step in reply.steps]
            return steps if len(steps) >= 2 else None

        steps = await _until("the steps to come back to 青峪县's trail", trail)
        assert steps[0][0] == "disposal_proposed" and steps[-1][0] == "inquiry"

        # 演示县 asks 青峪县 to verify a fact about the subject of that case.
        asking = demo.auth("county_leadership")
        asked = neighbour.auth("county_leadership")
        drafted = await demo_letters.RequestLetter(
            letters_pb.RequestLetterRequest(
                idempotency_key=uuid.uuid4().hex,
                county_id=DEMO_COUNTY,
                zone_id=case.case.zone_id,
                case_id=case_id,
                target_county_id=NEIGHBOUR_COUNTY,
                kind=letters_pb.LETTER_KIND_VERIFY_FACT,
                question="请核实郑某2025年在贵县柳河镇领取补贴的情况",
                fields={"subject_name": "郑某", "subject_employer": "柳河镇杨家坪村委会"},
            ),
            metadata=asking,
            timeout=30,
        )
        letter_id = drafted.letter.letter_id
        await demo_letters.ApproveLetter(
            letters_pb.ApproveLetterRequest(idempotency_key=uuid.uuid4().hex, letter_id=letter_id),
            metadata=asking,
            timeout=30,
        )

        def side_of(
            stub: Any, metadata: Any, ready: Callable[[Any], bool]
        ) -> Callable[[], Awaitable[Any]]:
            async def probe() -> Any:
                reply = await stub.GetLetter(
                    letters_pb.GetLetterRequest(letter_id=letter_id), metadata=metadata, timeout=30
                )
                return reply.letter if ready(reply.letter) else None

            return probe

        await _until(
            "青峪县 to verify and receive the letter",
            side_of(neighbour_letters, asked, lambda _: True),
        )
        await neighbour_letters.DecideLetter(
            letters_pb.DecideLetterRequest(
                idempotency_key=uuid.uuid4().hex,
                letter_id=letter_id,
                accept=True,
                subject_township_id="qy-t2",
            ),
            metadata=asked,
            timeout=30,
        )
        drawn = await _until(
            "青峪县's staffing to draw the letter's team",
            side_of(neighbour_letters, asked, lambda x: bool(x.team_draw_id)),
        )
        # From 青峪县's own pool, nobody whose home is the subject's township (柳河镇).
        assert drawn.team_person_ids and all(
            person.startswith("qy-") for person in drawn.team_person_ids
        )
        assert not {"qy-p09", "qy-p10"} & set(drawn.team_person_ids)
        findings = "经核实，郑某2025年经手柳河镇惠民补贴发放两批次，名册已调取。"
        await neighbour_letters.AnswerLetter(
            letters_pb.AnswerLetterRequest(
                idempotency_key=uuid.uuid4().hex, letter_id=letter_id, findings=findings
            ),
            metadata=asked,
            timeout=30,
        )
        answered = await _until(
            "演示县 to verify the answer",
            side_of(demo_letters, asking, lambda x: x.state == letters_pb.LETTER_STATE_ANSWERED),
        )
        assert answered.findings == findings

        async def in_history() -> dict[str, Any] | None:
            reply = await arrived()
            assert reply is not None
            for step in reply.history:
                if step.action == "assistance_answered":
                    detail: dict[str, Any] = json.loads(step.detail_json)
                    return detail
            return None

        detail = await _until("the answer to land in the case's history in 演示县", in_history)
        assert detail["letter_id"] == letter_id and detail["findings"] == findings
        assert detail["answered_by_county"] == NEIGHBOUR_COUNTY

    # Each deployment consumed in its own groups; nobody in the shared default ones.
    admin = AIOKafkaAdminClient(bootstrap_servers=own_kafka.bootstrap_servers)
    await admin.start()
    try:
        groups = {group[0] for group in await admin.list_consumer_groups()}
    finally:
        await admin.close()
    for county in (DEMO_COUNTY, NEIGHBOUR_COUNTY):
        assert {f"xiezuo-{county}-{name}" for name in DEPLOYED} <= groups
    assert not {f"xiezuo-{name}" for name in DEPLOYED} & groups
