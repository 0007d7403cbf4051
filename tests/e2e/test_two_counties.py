"""Two counties (and the city commission) as deployments on one broker: each county its own
intake, cases, staffing and collaboration processes, databases, consumer groups, token key and
signing key; the city commission acts through a county's collaboration service with its own
role and token.

演示县 (c-demo) and 青峪县 (c-qingyu) share a broker of this module's own (`own_kafka`: on
the session broker the default groups have the e2e stack's members). Issue 11's first "Done
when", one test each, over the same running processes:

- a clue transfer arrives as a clue in 演示县 and its steps come back to 青峪县's trail; an
  assistance letter asked from it is approved, verified, accepted, drawn, answered, and the
  findings land in the case's history in 演示县;
- a case the city commission designates (`xiezuo cases designate`) arrives as a clue in 青峪县;
- a joint case (`xiezuo cases joint open|accept`) draws its team from both counties' pools;
- forged, replayed and misaddressed records put on the cross-county topic by a raw producer
  are dead-lettered with their reason and change nothing;
- a marker scan: the originating real-name reports carry marker strings in the reporter's
  identity and the report text; none appears on the cross-county topic (nor the reporter's
  identity on any topic), in any process's log or on any /metrics page, and every
  cross-county record carries only fields its versioned allowlist names.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import yaml
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xiezuo.cases.v1 import cases_pb2, cases_pb2_grpc
from xiezuo.collaboration.v1 import collaboration_pb2 as letters_pb
from xiezuo.collaboration.v1 import (
    collaboration_pb2_grpc,
    joint_cases_pb2,
    joint_cases_pb2_grpc,
    transfers_pb2,
    transfers_pb2_grpc,
)
from xiezuo.intake.v1 import intake_pb2, intake_pb2_grpc

from services.collaboration.domain.letter_kinds import LetterKind, parse_letter_kinds
from services.collaboration.domain.signing import sign, signed_bytes
from services.collaboration.domain.transfer_rules import parse_transfer_rules
from services.collaboration.letters import source_of
from services.collaboration.settings import (
    DEFAULT_LETTER_KINDS_FILE,
    DEFAULT_TRANSFER_RULES_FILE,
)
from services.collaboration.signing_keys import DEV_KEY_PREFIX
from services.contracts import collaboration as collaboration_contracts
from services.contracts import transfers as transfer_contracts
from services.contracts.collaboration import LETTERS_TOPIC, CrossCountyRecord
from services.contracts.transfers import ClueTransferred
from services.demo.county import DEMO_COUNTY_FILE
from services.demo.network import (
    CITY_ID,
    DEMO_COUNTY,
    NEIGHBOUR_COUNTY,
    NEIGHBOUR_COUNTY_FILE,
    network_yaml,
)
from services.runtime.envelope import Envelope
from services.runtime.localstack import KafkaNode
from services.runtime.tokens import ALL_ZONES, ensure_dev_keypair, load_private_key, mint_dev_token
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
from tests.integration.helpers import produce

T = TypeVar("T")
# The processes of one county's deployment.
DEPLOYED = ("intake", "cases", "staffing", "collaboration")
WAIT_SECONDS = 90.0
# Where collaboration parks what it refuses (both deployments; the consumer header says whose).
COLLABORATION_DEAD_LETTERS = "xiezuo.collaboration.dead-letter"
RUN = uuid.uuid4().hex[:8]
# The originating reports' reporter identity and report text: none of it may cross.
REPORTER_MARKERS = {
    "full_name": f"实名举报人MARKER{RUN}",
    "id_number": f"110105{RUN}0307",
    "phone": f"1390{RUN[:7]}",
    "address": f"静巷MARKER-ADDR-{RUN}号",
}
REPORT_TEXT_MARKER = f"举报原文MARKER-TEXT-{RUN}"
# Where each county's originating report is filed (zone, township of the subject).
REPORT_PLACE = {DEMO_COUNTY: ("z-1", "t-01"), NEIGHBOUR_COUNTY: ("qy-z1", "qy-t1")}


@dataclass
class County:
    """One county's deployment: its state dir (keys, SQLite databases) and its processes."""

    county_id: str
    state_dir: Path
    env: dict[str, str]
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def auth(
        self, role: str, subject: str = "", county_id: str = ""
    ) -> tuple[tuple[str, str], ...]:
        """Call metadata for a person of this county in `role` (its own token key).

        `county_id` another scope (the city commission's) signed by this deployment's key.
        """
        return (("authorization", f"Bearer {self.token(role, subject, county_id)}"),)

    def token(self, role: str, subject: str = "", county_id: str = "") -> str:
        """A token this deployment's services accept."""
        return mint_dev_token(
            key_dir=self.state_dir / "keys",
            subject=subject or f"{county_id or self.county_id}-{role}",
            roles=[role],
            county_id=county_id or self.county_id,
            zone_ids=[ALL_ZONES],
        )

    def grpc(self, service: str) -> str:
        return self.services[service].grpc

    def cli_env(self, service: str) -> dict[str, str]:
        """The environment a `xiezuo` command needs to call this county's `service`."""
        host, port = self.grpc(service).rsplit(":", 1)
        prefix = f"XIEZUO_{service.upper()}_"
        return {**self.env, f"{prefix}GRPC_HOST": host, f"{prefix}GRPC_PORT": port}

    def signing_key(self) -> Ed25519PrivateKey:
        """The county's collaboration signing key (`xiezuo collaboration keygen` made it)."""
        path = self.state_dir / "keys" / f"{DEV_KEY_PREFIX}{self.county_id}.pem"
        return load_private_key(path.read_bytes())


@dataclass(frozen=True)
class Filed:
    """A county's originating real-name report and the case it opened there."""

    county_id: str
    zone_id: str
    township_id: str
    case_id: str


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


@pytest.fixture(scope="module")
async def counties(
    own_kafka: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[County, County]]:
    """Both deployments configured (keys, one network file, both counties' staff) and running."""
    tmp_path = tmp_path_factory.mktemp("two-counties")
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
        # Each county's staff: letters' and joint cases' teams are drawn from them.
        _xiezuo(demo.env, "staffing", "import", str(DEMO_COUNTY_FILE)),
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


@pytest.fixture(scope="module")
async def filed(counties: tuple[County, County]) -> dict[str, Filed]:
    """In each county a real-name report with the markers, registered as a clue in cases."""
    return {county.county_id: await _file_marked_report(county) for county in counties}


async def _file_marked_report(county: County) -> Filed:
    zone_id, township_id = REPORT_PLACE[county.county_id]
    request = intake_pb2.SubmitReportRequest(
        idempotency_key=uuid.uuid4().hex,
        county_id=county.county_id,
        zone_id=zone_id,
        township_id=township_id,
        channel=intake_pb2.REPORT_CHANNEL_LETTER,
        subject=intake_pb2.ReportedSubject(
            name="孙某",
            post="村党支部书记",
            unit="村委会",
            township_id=township_id,
            village="河西村",
            cadre_level=intake_pb2.CADRE_LEVEL_VILLAGE,
        ),
        allegation_categories=["favoritism_in_subsidies"],
        content=f"{REPORT_TEXT_MARKER}：孙某把扶贫补贴发给了自己的亲属。",
        reporter=intake_pb2.ReporterIdentity(**REPORTER_MARKERS),
    )
    async with (
        grpc.aio.insecure_channel(county.grpc("intake")) as intake_channel,
        grpc.aio.insecure_channel(county.grpc("cases")) as cases_channel,
    ):
        reply = await intake_pb2_grpc.IntakeServiceStub(intake_channel).SubmitReport(
            request, metadata=county.auth("intake_officer"), timeout=30
        )
        assert reply.clue_id
        cases = cases_pb2_grpc.CaseServiceStub(cases_channel)

        async def registered() -> str | None:
            case = await cases.GetCase(
                cases_pb2.GetCaseRequest(case_id=reply.clue_id),
                metadata=county.auth("zone_chief"),
                timeout=30,
            )
            return str(case.case.case_id) or reply.clue_id

        case_id = await _until(f"the report's clue in {county.county_id}'s cases", registered)
    return Filed(county.county_id, zone_id, township_id, case_id)


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


def _json_of(output: str) -> dict[str, Any]:
    """A `--json` command's response."""
    parsed: dict[str, Any] = json.loads(output)
    return parsed


async def test_a_case_the_city_designates_arrives_as_a_clue_in_the_designated_county(
    counties: tuple[County, County],
) -> None:
    demo, neighbour = counties
    # The city commission (its role, a token scoped to the network's city id) designates
    # 青峪县 to handle a clue of 演示县 (异地办案): 演示县's deployment signs what crosses.
    city_token = demo.token("city_commission", "city-officer", county_id=CITY_ID)
    excerpt = "反映孙某在柳河镇任职期间插手工程，由市纪委指定青峪县管辖。"
    designated = _json_of(
        await _xiezuo(
            demo.cli_env("collaboration"),
            "cases",
            "designate",
            "--from",
            DEMO_COUNTY,
            "--to",
            NEIGHBOUR_COUNTY,
            "--field",
            "subject_name=孙某",
            "--field",
            "subject_position=镇长",
            "--field",
            "township_of_jurisdiction=qy-t2",
            "--field",
            "allegation_category=favoritism_in_subsidies",
            "--excerpt",
            excerpt,
            "--token",
            city_token,
            "--json",
        )
    )
    transfer_id = designated["transfer_id"]
    # A county's leadership may not designate: that is the city's.
    refused = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        "cases",
        "designate",
        "--from",
        DEMO_COUNTY,
        "--to",
        NEIGHBOUR_COUNTY,
        "--field",
        "subject_name=孙某",
        "--field",
        "allegation_category=favoritism_in_subsidies",
        "--token",
        demo.token("county_leadership"),
        cwd=REPO_ROOT,
        env=demo.cli_env("collaboration"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await refused.wait() != 0

    async with (
        grpc.aio.insecure_channel(neighbour.grpc("cases")) as cases_channel,
        grpc.aio.insecure_channel(demo.grpc("collaboration")) as demo_collab,
    ):
        neighbour_cases = cases_pb2_grpc.CaseServiceStub(cases_channel)

        async def arrived() -> cases_pb2.GetCaseResponse | None:
            reply: cases_pb2.GetCaseResponse = await neighbour_cases.GetCase(
                cases_pb2.GetCaseRequest(case_id=transfer_id),
                metadata=neighbour.auth("zone_chief"),
                timeout=30,
            )
            return reply

        case = await _until("the designated case to arrive as a clue in 青峪县", arrived)
        assert case.case.county_id == NEIGHBOUR_COUNTY
        # 演示县 cannot see it there: the clue is 青峪县's now.
        with pytest.raises(grpc.aio.AioRpcError):
            await neighbour_cases.GetCase(
                cases_pb2.GetCaseRequest(case_id=transfer_id),
                metadata=neighbour.auth("zone_chief", county_id=DEMO_COUNTY),
                timeout=30,
            )
        # The city reads the designation's trail at the sending county: mode and target only.
        trail = await transfers_pb2_grpc.TransferServiceStub(demo_collab).GetTransferTrail(
            transfers_pb2.GetTransferTrailRequest(transfer_id=transfer_id),
            metadata=(("authorization", f"Bearer {city_token}"),),
            timeout=30,
        )
        assert (trail.mode, trail.from_county_id, trail.target_county_id) == (
            "designation",
            DEMO_COUNTY,
            NEIGHBOUR_COUNTY,
        )


async def test_a_joint_case_draws_its_team_from_both_counties_pools(
    counties: tuple[County, County], filed: dict[str, Filed]
) -> None:
    demo, neighbour = counties
    mine, theirs = filed[DEMO_COUNTY], filed[NEIGHBOUR_COUNTY]
    # 演示县's leadership opens a discipline joint case from its case; 青峪县 joins from its own.
    opened = _json_of(
        await _xiezuo(
            demo.cli_env("collaboration"),
            "cases",
            "joint",
            "open",
            mine.case_id,
            "--county",
            DEMO_COUNTY,
            "--partner",
            NEIGHBOUR_COUNTY,
            "--township",
            mine.township_id,
            "--kind",
            "discipline",
            "--own-share",
            "2",
            "--partner-share",
            "2",
            "--token",
            demo.token("county_leadership"),
            "--json",
        )
    )
    joint_id = opened["joint_case"]["joint_id"]
    async with (
        grpc.aio.insecure_channel(demo.grpc("collaboration")) as demo_collab,
        grpc.aio.insecure_channel(neighbour.grpc("collaboration")) as neighbour_collab,
    ):
        stubs = {
            DEMO_COUNTY: (joint_cases_pb2_grpc.JointCaseServiceStub(demo_collab), demo),
            NEIGHBOUR_COUNTY: (
                joint_cases_pb2_grpc.JointCaseServiceStub(neighbour_collab),
                neighbour,
            ),
        }

        def seen_by(county_id: str, ready: Callable[[Any], bool]) -> Callable[[], Awaitable[Any]]:
            stub, county = stubs[county_id]

            async def probe() -> Any:
                reply = await stub.GetJointCase(
                    joint_cases_pb2.GetJointCaseRequest(joint_id=joint_id, county_id=county_id),
                    metadata=county.auth("county_leadership"),
                    timeout=30,
                )
                return reply.joint_case if ready(reply.joint_case) else None

            return probe

        await _until("青峪县 to verify the joint case", seen_by(NEIGHBOUR_COUNTY, lambda _: True))
        await _xiezuo(
            neighbour.cli_env("collaboration"),
            "cases",
            "joint",
            "accept",
            joint_id,
            "--county",
            NEIGHBOUR_COUNTY,
            "--case",
            theirs.case_id,
            "--township",
            theirs.township_id,
            "--token",
            neighbour.token("county_leadership"),
            "--json",
        )

        def whole(view: Any) -> bool:
            return bool(view.own_member_ids) and bool(view.partner_member_ids)

        seen_demo = await _until("演示县 to see both shares", seen_by(DEMO_COUNTY, whole))
        seen_neighbour = await _until("青峪县 to see both shares", seen_by(NEIGHBOUR_COUNTY, whole))
    assert seen_demo.state == "accepted" and seen_neighbour.state == "accepted"
    # Each share from its own county's pool, never anyone at home in the subject's township.
    home = _homes(DEMO_COUNTY_FILE) | _homes(NEIGHBOUR_COUNTY_FILE)
    demo_people, neighbour_people = (
        set(_people(DEMO_COUNTY_FILE)),
        set(_people(NEIGHBOUR_COUNTY_FILE)),
    )
    assert len(seen_demo.own_member_ids) == 2 and set(seen_demo.own_member_ids) <= demo_people
    assert len(seen_neighbour.own_member_ids) == 2
    assert set(seen_neighbour.own_member_ids) <= neighbour_people
    for person in seen_demo.own_member_ids:
        assert home.get(person) != mine.township_id, person
    for person in seen_neighbour.own_member_ids:
        assert home.get(person) != theirs.township_id, person
    # One team: each county sees the other's share as the other drew it; its own case only.
    assert list(seen_demo.partner_member_ids) == list(seen_neighbour.own_member_ids)
    assert list(seen_neighbour.partner_member_ids) == list(seen_demo.own_member_ids)
    assert (seen_demo.case_id, seen_neighbour.case_id) == (mine.case_id, theirs.case_id)


def _people(county_file: Path) -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(county_file.read_text(encoding="utf-8"))
    return {str(p["person_id"]): p for p in document.get("people", [])}


def _homes(county_file: Path) -> dict[str, str]:
    """Person id → home township, for those the county file gives one."""
    return {
        person: str(p["home_township"])
        for person, p in _people(county_file).items()
        if p.get("home_township")
    }


def _sealed(
    record: CrossCountyRecord,
    key: Ed25519PrivateKey,
    *,
    event_id: str = "",
    source: str = "",
) -> tuple[str, tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """`record` signed by `key` under `event_id` (fresh when ""), as raw Kafka (key, value,
    headers); `source` overrides the CloudEvents source (the sender's by default)."""
    event_id = event_id or str(uuid.uuid4())
    source = source or source_of(record.from_county)
    payload = json.loads(record.model_dump_json())
    message = signed_bytes(
        event_id=event_id,
        event_type=record.event_type,
        source=source_of(record.from_county),
        subject=record.subject_id(),
        payload=payload,
    )
    signed = record.model_copy(update={"signature": sign(key, message)})
    envelope = Envelope(
        id=event_id,
        type=record.event_type,
        source=source,
        time=datetime.now(UTC),
        county_id=record.county_id,
        zone_id=record.zone_id,
        data=signed.model_dump_json().encode(),
        subject=record.subject_id(),
    )
    return event_id, (record.partition_key().encode(), envelope.data, envelope.headers())


async def _records(bootstrap: str, *topics: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now on `topics` (all topics when none), read without a group."""
    names = set(topics)
    if not names:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = {topic for topic in await admin.list_topics() if not topic.startswith("__")}
        finally:
            await admin.close()
    consumer = AIOKafkaConsumer(
        *sorted(names),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"no partitions of {sorted(names)} assigned"
            found.extend(
                r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch
            )
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(at >= ends[tp] for at, tp in zip(positions, partitions, strict=True)):
                break
            assert time.monotonic() < deadline, "could not read the topics to their ends"
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                found.extend(batch)
    finally:
        await consumer.stop()
    return found


def _headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in record.headers}


async def test_forged_replayed_and_misaddressed_records_are_dead_lettered_and_change_nothing(
    counties: tuple[County, County], own_kafka: KafkaNode
) -> None:
    demo, neighbour = counties
    bootstrap = own_kafka.bootstrap_servers
    fields = {
        "subject_name": "钱某",
        "township_of_jurisdiction": "t-02",
        "allegation_category": "favoritism_in_subsidies",
    }
    async with (
        grpc.aio.insecure_channel(neighbour.grpc("collaboration")) as neighbour_collab,
        grpc.aio.insecure_channel(demo.grpc("cases")) as demo_cases_channel,
    ):
        demo_cases = cases_pb2_grpc.CaseServiceStub(demo_cases_channel)

        async def case_file(case_id: str) -> cases_pb2.GetCaseResponse | None:
            reply: cases_pb2.GetCaseResponse = await demo_cases.GetCase(
                cases_pb2.GetCaseRequest(case_id=case_id),
                metadata=demo.auth("zone_chief"),
                timeout=30,
            )
            return reply

        # A genuine transfer from 青峪县, to replay.
        genuine = await transfers_pb2_grpc.TransferServiceStub(neighbour_collab).TransferClue(
            transfers_pb2.TransferClueRequest(
                idempotency_key=uuid.uuid4().hex,
                county_id=NEIGHBOUR_COUNTY,
                target_county_id=DEMO_COUNTY,
                fields=fields,
            ),
            metadata=neighbour.auth("county_leadership"),
            timeout=30,
        )
        before = await _until(
            "the genuine transfer in 演示县", lambda: case_file(genuine.transfer_id)
        )
        (original,) = [
            r
            for r in await _records(bootstrap, LETTERS_TOPIC)
            if _headers(r).get("ce_subject") == genuine.transfer_id
        ]
        original_id = _headers(original)["ce_id"]
        sent = ClueTransferred.read(original.value)

        def transfer(transfer_id: str, **overrides: Any) -> ClueTransferred:
            values: dict[str, Any] = {
                "county_id": DEMO_COUNTY,
                "letter_id": transfer_id,
                "from_county": NEIGHBOUR_COUNTY,
                "network_version": 1,
                "mode": "transfer",
                "allowlist_version": sent.allowlist_version,
                "fields": fields,
                "sent_at": datetime.now(UTC),
            }
            values.update(overrides)
            return ClueTransferred(**values)

        key = neighbour.signing_key()
        forger = Ed25519PrivateKey.generate()
        forged_id = f"T-forged-{RUN}"
        stranger_id = f"T-stranger-{RUN}"
        disguised_id = f"T-disguised-{RUN}"
        posing_id = f"T-posing-{RUN}"
        # Event id → (reason the error starts with, consumers that must park it, record).
        bad: dict[str, tuple[str, set[str], tuple[bytes, bytes, list[tuple[str, bytes]]]]] = {}

        def add(reason: str, consumers: set[str], sealed: tuple[str, Any]) -> None:
            bad[sealed[0]] = (reason, consumers, sealed[1])

        # Only 演示县's deployment reads records addressed to 演示县 (青峪县's leaves them be);
        # it names itself by its inbox's name, which the group prefix does not change.
        demo_group = "xiezuo-collaboration"
        # Forged: a transfer in 青峪县's name, signed by a key the network does not list.
        add("bad-signature", {demo_group}, _sealed(transfer(forged_id), forger))
        # Replayed: the genuine transfer's id again with other content, signed by 青峪县...
        add(
            "replayed",
            {demo_group},
            _sealed(
                sent.model_copy(update={"sent_at": datetime.now(UTC), "signature": ""}),
                key,
                event_id=original_id,
            ),
        )
        # ...and the same transfer re-sent under a fresh event id.
        add(
            "replayed",
            {demo_group},
            _sealed(sent.model_copy(update={"signature": ""}), key),
        )
        # Misaddressed, each signed with 青峪县's real key: 青峪县's record dressed as coming
        # from 演示县's own source; one naming a sender outside the network; and a plain
        # transfer claiming the city commission designated it.
        add(
            "misaddressed",
            {demo_group},
            _sealed(transfer(disguised_id), key, source=source_of(DEMO_COUNTY)),
        )
        add(
            "misaddressed",
            {demo_group},
            _sealed(transfer(stranger_id, from_county="c-elsewhere"), key),
        )
        add(
            "misaddressed",
            {demo_group},
            _sealed(transfer(posing_id, designated_by=CITY_ID), key),
        )
        # The very record delivered again first (at-least-once): acknowledged, not parked;
        # the others follow it on the same partition, so once they are parked it was read.
        await produce(
            bootstrap,
            LETTERS_TOPIC,
            [(original.key, original.value, list(original.headers))]
            + [raw for _, _, raw in bad.values()],
        )

        async def parked() -> list[ConsumerRecord[bytes, bytes]] | None:
            records = [
                r
                for r in await _records(bootstrap, COLLABORATION_DEAD_LETTERS)
                if _headers(r).get("ce_id") in bad or _headers(r).get("ce_id") == original_id
            ]
            want = {(i, c) for i, (_, consumers, _) in bad.items() for c in consumers}
            got = {(_headers(r)["ce_id"], _headers(r)["x-dead-letter-consumer"]) for r in records}
            return records if want <= got else None

        try:
            dead = await _until("every bad record to be dead-lettered", parked)
        except AssertionError as timed_out:
            seen = [
                (h.get("ce_id"), h.get("x-dead-letter-consumer"), h.get("x-dead-letter-error"))
                for h in map(_headers, await _records(bootstrap, COLLABORATION_DEAD_LETTERS))
            ]
            expected = {i: (reason, consumers) for i, (reason, consumers, _) in bad.items()}
            raise AssertionError(f"{timed_out}; expected {expected}; parked {seen}") from None
        for record in dead:
            headers = _headers(record)
            reason, consumers, raw = bad[headers["ce_id"]]
            if headers["x-dead-letter-consumer"] not in consumers:
                continue
            assert headers["x-dead-letter-reason"] == "rejected", headers
            assert headers["x-dead-letter-error"].startswith(reason), headers
            assert headers["x-original-topic"] == LETTERS_TOPIC
            # Parked as it came, for an operator to inspect.
            if headers["ce_id"] != original_id:
                assert record.value == raw[1]
        # The byte-identical redelivery was not parked by 演示县 (only the altered replay was).
        assert (
            sum(
                1
                for r in dead
                if _headers(r)["ce_id"] == original_id
                and _headers(r)["x-dead-letter-consumer"] == demo_group
            )
            == 1
        )
        # Nothing changed: no clue for any bad record, the genuine one's file as it was.
        for case_id in (forged_id, stranger_id, disguised_id, posing_id):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await case_file(case_id)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND, case_id
        after = await case_file(genuine.transfer_id)
        assert after is not None and before is not None
        assert list(after.history) == list(before.history)


def _contract_classes() -> dict[str, type[CrossCountyRecord]]:
    """Event type → contract of every record that crosses a county line."""
    found: dict[str, type[CrossCountyRecord]] = {}
    for module in (collaboration_contracts, transfer_contracts):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, CrossCountyRecord)
                and value is not CrossCountyRecord
            ):
                found[value.event_type] = value
    return found


def _metrics_page(address: str) -> bytes:
    url = address if address.startswith("http") else f"http://{address}/metrics"
    with urllib.request.urlopen(url, timeout=30) as reply:
        body: bytes = reply.read()
    return body


async def test_no_reporter_identity_and_no_field_outside_the_allowlist_crosses(
    counties: tuple[County, County],
    filed: dict[str, Filed],
    own_kafka: KafkaNode,
    request: pytest.FixtureRequest,
) -> None:
    """Run last: scans what every earlier test of the module left behind."""
    module_tests = {name for name in vars(request.module) if name.startswith("test_")}
    ran_all = module_tests <= {item.name for item in request.session.items}
    identity = [value.encode() for value in REPORTER_MARKERS.values()]
    text = REPORT_TEXT_MARKER.encode()
    everything = await _records(own_kafka.bootstrap_servers)
    crossing = [r for r in everything if r.topic == LETTERS_TOPIC]
    assert crossing, "no cross-county record to scan"
    # The marked reports were registered as clues in both counties (the joint case and the
    # letters worked from them), so the markers were in the system to leak.
    assert set(filed) == {DEMO_COUNTY, NEIGHBOUR_COUNTY}

    def raw(record: ConsumerRecord[bytes, bytes]) -> bytes:
        return b"\0".join(
            [record.key or b"", record.value or b""]
            + [name.encode() + b"=" + value for name, value in record.headers]
        )

    # Neither the reporter's identity nor the report text on any topic (a report's text never
    # leaves intake; its clue carries the subject and the categories).
    for record in everything:
        found = [m for m in [*identity, text] if m in raw(record)]
        assert not found, (record.topic, found)
    if ran_all:
        # The scan reads what crossed: the letter's question is there, as the sender wrote it.
        assert any("请核实郑某".encode() in raw(record) for record in crossing)
    # Neither in any process's log nor on any /metrics page.
    for county in counties:
        for service in county.services.values():
            logs = service.logs()
            assert logs, f"{county.county_id} {service.name} logged nothing"
            page = await asyncio.to_thread(_metrics_page, service.metrics)
            assert page, f"{county.county_id} {service.name} served no metrics"
            for where, blob in (("log", logs), ("/metrics", page)):
                found = [m for m in [*identity, text] if m in blob]
                assert not found, (county.county_id, service.name, where, found)

    # Every cross-county record: only its contract's fields, and of free-form `fields` only
    # what the versioned allowlist (the rule files collaboration loads) names.
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    modes = parse_transfer_rules(DEFAULT_TRANSFER_RULES_FILE.read_text(encoding="utf-8"))
    contracts = _contract_classes()
    seen_types: set[str] = set()
    for record in crossing:
        event_type = _headers(record)["ce_type"]
        contract = contracts.get(event_type)
        assert contract is not None, f"{event_type} is no cross-county contract"
        seen_types.add(event_type)
        payload = json.loads(record.value)
        assert set(payload) <= set(contract.model_fields), (event_type, sorted(payload))
        if "fields" not in payload:
            continue
        if event_type == ClueTransferred.event_type:
            rule = modes.rule(payload["mode"])
            version = modes.version
            allowed, excerpt_allowed = rule.fields, rule.excerpt_allowed
        else:
            kind_rule = kinds.rule(LetterKind(payload["kind"]))
            version = kinds.version
            allowed, excerpt_allowed = kind_rule.fields, kind_rule.excerpt_allowed
        assert payload["allowlist_version"] == version, payload
        assert set(payload["fields"]) <= allowed, (event_type, sorted(payload["fields"]))
        assert excerpt_allowed or not payload.get("excerpt"), event_type
    # The scan saw letters, transfers, outcomes and joint records, not an empty topic.
    for expected in (
        "xiezuo.collaboration.letter_sent.v1",
        "xiezuo.collaboration.letter_answered.v1",
        "xiezuo.collaboration.clue_transferred.v1",
        "xiezuo.collaboration.transfer_outcome.v1",
        "xiezuo.collaboration.joint_case_opened.v1",
        "xiezuo.collaboration.joint_share_drawn.v1",
    ):
        assert expected in seen_types or not ran_all, expected
