"""The demo's joint investigation (联合审查调查) between 演示县 and 青峪县, over the real API.

演示县's leadership opens a discipline joint case from one of its year's cases with 青峪县,
two people from each county; 青峪县's leadership joins it from the clue it took over; each
county's staffing draws its share from its own pool (never from the subject's township
there); once both shares have crossed, 演示县 closes it as concluded, which frees both teams.
Each county acts with its own leadership token; only person ids cross between them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import grpc
import yaml
from xiezuo.collaboration.v1 import joint_cases_pb2 as pb
from xiezuo.collaboration.v1 import joint_cases_pb2_grpc

from services.demo.network import DEMO_COUNTY, NEIGHBOUR_COUNTY
from services.runtime.settings import PlatformSettings
from services.runtime.tokens import ALL_ZONES, mint_dev_token

if TYPE_CHECKING:
    from rich.console import Console

    from services.demo.driver import DemoOutcome
    from services.demo.first_run import DemoRequest
    from services.demo.letters import LettersYear

T = TypeVar("T")
# Seconds one step may take to cross and be drawn before the demo gives up on it.
STEP_TIMEOUT = 60.0
KIND = "discipline"
SHARE = 2


@dataclass(frozen=True)
class JointRecord:
    """How the demo's joint case went, as 演示县 holds it."""

    joint_id: str
    kind: str
    state: str
    outcome: str
    own_members: tuple[str, ...]
    partner_members: tuple[str, ...]


def first_township(county_file: Path, zone_id: str = "") -> str:
    """The first township of `zone_id` (any zone when "") in a county file."""
    document = yaml.safe_load(county_file.read_text(encoding="utf-8"))
    for zone in document.get("zones", []):
        if not zone_id or zone.get("zone_id") == zone_id:
            for township in zone.get("townships", []):
                return str(township["township_id"])
    raise ValueError(f"{county_file.name} names no township in zone {zone_id!r}")


async def _poll(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + STEP_TIMEOUT
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
            raise TimeoutError(f"{what} not seen within {STEP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.3)


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def joint_investigation(
    address: str,
    leadership_token: Callable[[str], str],
    *,
    demo_case: str,
    demo_township: str,
    neighbour_case: str,
    neighbour_township: str,
    key: str,
) -> JointRecord:
    """Open, join, draw both shares and close one joint case; 演示县's view at the end."""
    demo, neighbour = (
        _auth(leadership_token(DEMO_COUNTY)),
        _auth(leadership_token(NEIGHBOUR_COUNTY)),
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = joint_cases_pb2_grpc.JointCaseServiceStub(channel)
        opened = await stub.OpenJointCase(
            pb.OpenJointCaseRequest(
                idempotency_key=key,
                county_id=DEMO_COUNTY,
                partner_county_id=NEIGHBOUR_COUNTY,
                case_id=demo_case,
                subject_township_id=demo_township,
                kind=KIND,
                own_share=SHARE,
                partner_share=SHARE,
            ),
            metadata=demo,
        )
        joint_id = opened.joint_case.joint_id

        def seen_by(
            county: str, auth: tuple[tuple[str, str], ...]
        ) -> Callable[[], Awaitable[pb.JointCase]]:
            async def probe() -> pb.JointCase:
                reply = await stub.GetJointCase(
                    pb.GetJointCaseRequest(joint_id=joint_id, county_id=county), metadata=auth
                )
                return reply.joint_case

            return probe

        async def arrived() -> pb.JointCase | None:
            found = await seen_by(NEIGHBOUR_COUNTY, neighbour)()
            return found if found.state == "received" else None

        await _poll(arrived, f"joint case {joint_id} to reach {NEIGHBOUR_COUNTY}")
        await stub.AcceptJointCase(
            pb.AcceptJointCaseRequest(
                joint_id=joint_id,
                county_id=NEIGHBOUR_COUNTY,
                case_id=neighbour_case,
                subject_township_id=neighbour_township,
            ),
            metadata=neighbour,
        )

        async def whole_team() -> pb.JointCase | None:
            found = await seen_by(DEMO_COUNTY, demo)()
            return found if found.own_member_ids and found.partner_member_ids else None

        await _poll(whole_team, "both counties' shares of the joint team")
        await stub.CloseJointCase(
            pb.CloseJointCaseRequest(joint_id=joint_id, county_id=DEMO_COUNTY, outcome="concluded"),
            metadata=demo,
        )

        async def closed_there() -> pb.JointCase | None:
            found = await seen_by(NEIGHBOUR_COUNTY, neighbour)()
            return found if found.state == "closed" else None

        await _poll(closed_there, f"the close to reach {NEIGHBOUR_COUNTY}")
        final = await seen_by(DEMO_COUNTY, demo)()
    return JointRecord(
        joint_id=joint_id,
        kind=final.kind,
        state=final.state,
        outcome=final.outcome,
        own_members=tuple(final.own_member_ids),
        partner_members=tuple(final.partner_member_ids),
    )


def run_joint_demo(
    request: DemoRequest, outcome: DemoOutcome, letters: LettersYear, console: Console
) -> JointRecord | None:
    """The joint case after the letters; None (and why, on `console`) when it cannot run."""
    # The neighbour's case: the clue it took over from 演示县 (the last one handed over).
    handed = [h.transfer_id for h in letters.handed_over if h.transfer_id]
    if not request.collaboration or not outcome.cases or not handed:
        console.print("[yellow]demo: no joint case (no case in 青峪县 to join it from)[/yellow]")
        return None
    case = outcome.cases[-1]
    platform = PlatformSettings()

    def leadership_token(county_id: str) -> str:
        return mint_dev_token(
            key_dir=request.state_dir / "keys",
            subject=f"demo-joint-leadership-{county_id}",
            roles=["county_leadership"],
            county_id=county_id,
            zone_ids=[ALL_ZONES],
            issuer=platform.token_issuer,
            audience=platform.token_audience,
        )

    console.print(
        f"[cyan]demo:[/cyan] a joint investigation with 青峪县 from case {case.clue_id} ..."
    )
    try:
        return asyncio.run(
            joint_investigation(
                request.collaboration,
                leadership_token,
                demo_case=case.clue_id,
                demo_township=first_township(request.county_file, case.zone_id),
                neighbour_case=handed[-1],
                neighbour_township=first_township(request.neighbour_file),
                key=f"demo-joint-{case.clue_id}",
            )
        )
    except (grpc.aio.AioRpcError, TimeoutError, OSError, ValueError) as exc:
        reason = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        console.print(f"[red]demo joint case between counties failed:[/red] {reason}")
        return None


def joint_summary(record: JointRecord) -> str:
    """The end-of-run line for the joint case."""
    return (
        f"demo: joint case {record.joint_id} with 青峪县 ({record.kind}): team of "
        f"{len(record.own_members)} from 演示县 + {len(record.partner_members)} from 青峪县, "
        f"{record.state} ({record.outcome}); both teams freed"
    )
