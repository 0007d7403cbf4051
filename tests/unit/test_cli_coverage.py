"""Every RPC the services offer has a `xiezuo` command that follows the CLI's conventions."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import xiezuo
from typer.core import TyperGroup
from typer.testing import CliRunner

from services.cli.coverage import COMMAND_OF_RPC
from services.cli.main import app


def _proto_rpcs() -> set[str]:
    """Full names of every method of every service in the generated descriptors."""
    found: set[str] = set()
    for module in pkgutil.walk_packages(xiezuo.__path__, "xiezuo."):
        if not module.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(module.name).DESCRIPTOR
        for service in descriptor.services_by_name.values():
            found.update(method.full_name for method in service.methods)
    return found


def _command(path: str) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path.split():
        if not isinstance(command, TyperGroup):
            return None
        command = command.commands.get(name)
    return command


def _leaves(group: TyperGroup, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from _leaves(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_rpc_has_a_command_and_no_command_names_a_missing_rpc() -> None:
    rpcs = _proto_rpcs()
    assert len(rpcs) >= 56  # the four services' RPCs when this was written
    assert sorted(rpcs - COMMAND_OF_RPC.keys()) == [], "RPCs without a command"
    assert sorted(COMMAND_OF_RPC.keys() - rpcs) == [], "commands naming no RPC"


@pytest.mark.parametrize("rpc", sorted(COMMAND_OF_RPC))
def test_the_command_exists_calls_its_rpc_and_takes_token_and_json(rpc: str) -> None:
    path = COMMAND_OF_RPC[rpc]
    command = _command(path)
    assert command is not None and command.callback is not None, f"no command `xiezuo {path}`"
    options = {opt for param in command.params for opt in getattr(param, "opts", ())}
    assert {"--token", "--json", "--timeout"} <= options, path
    # The command's module names the method it calls (directly or through its helper).
    source = Path(inspect.getsourcefile(inspect.unwrap(command.callback)) or "").read_text(
        encoding="utf-8"
    )
    method = rpc.rsplit(".", 1)[1]
    assert f'"{method}"' in source or f".{method}(" in source, (path, method)


def test_every_command_renders_its_help() -> None:
    """An option Typer cannot build fails only when invoked; build every one."""
    runner = CliRunner()
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for path in _leaves(root):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def test_a_bad_enum_choice_is_refused_before_any_call(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["conflicts", "declare", "p-1", "--county", "c", "--party-key", "k"]
        + ["--valid-from", "2026-01-01", "--relation", "cousin", "--token", "t"],
    )
    assert result.exit_code == 2
    assert "close_relative_of_subject" in result.output


def test_a_plan_file_that_is_not_a_plan_is_refused_with_the_field(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("county_id: c\nyear: 2026\ntargets: [{quarter: 1, zone: z-1}]\n")
    result = CliRunner().invoke(app, ["plans", "define", str(plan), "--token", "t"])
    assert result.exit_code == 2
    assert "zone" in result.output and "PlanTarget" in result.output
    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("county_id: [unclosed\n")
    result = CliRunner().invoke(app, ["plans", "define", str(not_yaml), "--token", "t"])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_the_cli_page_names_every_rpc_with_its_command() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for rpc, path in COMMAND_OF_RPC.items():
        assert re.search(rf"\| `{re.escape(rpc)}` \| `{re.escape(path)}`", page), rpc
