"""`xiezuo serve collaboration` starts cleanly on the real broker and the CLI drives a letter
between two counties end to end: keygen, network import (a bad file refused by line), send,
approve, accept, answer, show."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from services.cli.main import app
from services.runtime.localstack import KafkaNode
from tests.integration.helpers import unique, wait_until


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cli:
    """`xiezuo` in this process, with the test's environment, off the event loop."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    async def __call__(self, *args: str, code: int = 0) -> str:
        result = await asyncio.to_thread(self.runner.invoke, app, list(args), env=self.env)
        assert result.exit_code == code, (args, result.output)
        return result.output

    async def token(self, county: str, subject: str, role: str) -> str:
        out = await self(
            "token", "--subject", subject, "--county", county, "--role", role, "--zone", "z-1"
        )
        return out.strip().splitlines()[-1]


async def test_the_service_starts_and_the_cli_carries_a_letter(
    own_kafka: KafkaNode, tmp_path: Path
) -> None:
    kafka = own_kafka
    a, b = unique("cty-a"), unique("cty-b")
    env = {
        "XIEZUO_STATE_DIR": str(tmp_path / "state"),
        "XIEZUO_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "XIEZUO_COLLABORATION_GRPC_PORT": str(_free_port()),
        "XIEZUO_COLLABORATION_METRICS_PORT": "0",
        "XIEZUO_AUDIT_CHECKPOINT_SECONDS": "3600",
    }
    cli = Cli(env)
    keys = {county: await cli("collaboration", "keygen", "--county", county) for county in (a, b)}
    assert all(key.startswith("-----BEGIN PUBLIC KEY-----") for key in keys.values())
    counties = "".join(
        f"  - county_id: {county}\n    name: {county}县\n    public_key: |\n"
        + "".join(f"      {line}\n" for line in key.strip().splitlines())
        for county, key in keys.items()
    )
    network = tmp_path / "network.yaml"
    network.write_text(
        "network: test\nversion: 1\ncity_commission: {id: city-t, name: 市纪委}\n"
        f"counties:\n{counties}agreements:\n  - counties: [{a}, {b}]\n    kinds: [verify_fact]\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        network.read_text(encoding="utf-8")
        .replace("[verify_fact]", "[verify_fact, gossip]")
        .replace("version: 1", "version: one"),
        encoding="utf-8",
    )
    refused = await cli("collaboration", "network", "import", str(bad), code=1)
    assert "version: must be a positive integer" in refused and "'gossip' is not a kind" in refused
    assert "nothing was imported" in refused
    await cli("collaboration", "network", "import", str(network))

    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        "serve",
        "collaboration",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        ready: dict[str, Any] = {}
        while not ready:
            line = await asyncio.wait_for(server.stdout.readline(), 120)
            assert line, "the service exited before it was ready"
            with contextlib.suppress(ValueError):
                ready = json.loads(line).get("ready", {})
        officer_a = await cli.token(a, "officer-a", "case_officer")
        leader_a = await cli.token(a, "leader-a", "county_leadership")
        leader_b = await cli.token(b, "leader-b", "county_leadership")
        officer_b = await cli.token(b, "officer-b", "case_officer")
        out = await cli(
            "letters",
            "send",
            "case-1",
            "--county",
            a,
            "--zone",
            "z-1",
            "--to",
            b,
            "--kind",
            "verify_fact",
            "--question",
            "请核实王某的任职情况",
            "--field",
            "subject_name=王某",
            "--json",
            "--token",
            officer_a,
        )
        letter_id = json.loads(out)["letter_id"]
        # A field the kind does not allow: exit 2, nothing drafted.
        await cli(
            "letters",
            "send",
            "case-1",
            "--county",
            a,
            "--zone",
            "z-1",
            "--to",
            b,
            "--kind",
            "verify_fact",
            "--question",
            "q",
            "--field",
            "reporter_name=某",
            "--token",
            officer_a,
            code=2,
        )
        await cli("letters", "approve", letter_id, "--token", leader_a)

        async def received() -> bool:
            listed = await cli(
                "letters",
                "list",
                "--county",
                b,
                "--direction",
                "inbound",
                "--json",
                "--token",
                leader_b,
            )
            return letter_id in listed

        await wait_until(received, "county B to receive the letter")
        await cli("letters", "accept", letter_id, "--token", leader_b)

        async def state_of_a(state: str) -> bool:
            shown = json.loads(
                await cli("letters", "show", letter_id, "--json", "--token", officer_a)
            )
            return bool(shown.get("state") == state)

        await wait_until(lambda: state_of_a("LETTER_STATE_ACCEPTED"), "A to see the acceptance")
        await cli(
            "letters",
            "answer",
            letter_id,
            "--findings",
            "王某在某公司任会计",
            "--attachment",
            f"记录.pdf:{'ab' * 32}:1024:application/pdf",
            "--token",
            officer_b,
        )
        await wait_until(lambda: state_of_a("LETTER_STATE_ANSWERED"), "A to see the answer")
        shown = json.loads(await cli("letters", "show", letter_id, "--json", "--token", officer_a))
        assert shown["findings"] == "王某在某公司任会计" and shown["case_id"] == "case-1"
        # B's token shows B's side of the same letter: no case.
        b_side = json.loads(await cli("letters", "show", letter_id, "--json", "--token", officer_b))
        assert b_side["county_id"] == b and "case_id" not in b_side
        # A county outside the network finds nothing (exit 6).
        stranger = await cli.token(unique("cty-x"), "x", "case_officer")
        await cli("letters", "show", letter_id, "--token", stranger, code=6)
        await cli("collaboration", "network", "show", "--token", officer_a)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 60)
