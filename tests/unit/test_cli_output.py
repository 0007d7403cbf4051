"""Every command prints every field of a full answer, as a table/text and as --json.

The answers come from a gRPC server in this process that fills every field of each response
(the services' real behaviour is tested end to end in tests/e2e/test_cli_every_operation.py);
this catches a command that names a field its response does not have, or cannot print one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.protobuf.timestamp_pb2 import Timestamp
from typer.testing import CliRunner

from services.cli.coverage import COMMAND_OF_RPC
from services.cli.main import app
from services.runtime.settings import SERVICES, STANDALONE_SERVICES

# Arguments that make each command reach its RPC (files are written by the test).
ARGS: dict[str, list[str]] = {
    "reports submit": ["{report_file}"],
    "reports status": ["1234567890123456", "--county", "c"],
    "reports accept": ["r-1"],
    "reports reject": ["r-1", "--ground", "no_substance", "--reason", "x"],
    "reports forward": ["r-1", "--to", "city commission"],
    "reports duplicates": ["--county", "c"],
    "reports duplicate": ["dup-1", "keep_separate", "--reason", "x"],
    "reports message": ["--report", "r-1", "--body", "hello"],
    "reports messages": ["--receipt", "1234567890123456", "--county", "c"],
    "reports add-info": ["1234567890123456", "--county", "c", "--content", "more"],
    "reports feedback": ["r-1", "--note", "told", "--effective-at", "2026-03-05T09:30:00"],
    "reports reveal-identity request": ["r-1", "--reason", "statement"],
    "reports reveal-identity decide": ["rv-1", "refuse", "--reason", "no need"],
    "reports reveal-identity read": ["rv-1"],
    "clues show": ["clue-1"],
    "clues list": ["--county", "c"],
    "clues dispose": ["clue-1", "close"],
    "cases show": ["clue-1"],
    "cases advance": ["clue-1", "approve_disposal"],
    "cases list": ["--county", "c", "--overdue-only"],
    "cases counts": ["--county", "c", "--zone", "z"],
    "cases link": ["clue-1", "clue-2", "--reason", "x"],
    "cases joint townships": ["clue-1", "--township", "t-2", "--reason", "x"],
    "rectification open": ["--county", "c", "--zone", "z", "--township", "t", "--source"]
    + ["campaign", "--source-ref", "camp-1", "--owner-unit", "u", "--finding", "f"],
    "rectification progress": ["rect-1", "--note", "n", "--percent", "40"],
    "rectification verify": ["rect-1", "--not-done", "--note", "n"],
    "rectification show": ["rect-1"],
    "rectification list": ["--county", "c", "--open-only"],
    "draws explain": ["draw-1"],
    "draws replay": ["draw-1"],
    "draws override": ["draw-1", "--member", "p-1", "--reason", "x"],
    "people show": ["p-1"],
    "people list": ["--county", "c"],
    "people create": ["p-1", "--county", "c", "--name", "n", "--role", "township_member"],
    "people update": ["p-1", "--skill", "law", "--status", "on_leave:2026-03-01"],
    "conflicts declare": ["p-1", "--county", "c", "--party-key", "k", "--relation"]
    + ["interest_in_matter", "--valid-from", "2026-01-01"],
    "recusal request": ["case-1", "p-1", "--county", "c", "--zone", "z", "--ground"]
    + ["other", "--raised-by", "reporter"],
    "recusal decide": ["rec-1", "refuse"],
    "assignments accept": ["draw-1"],
    "assignments decline": ["draw-1", "--reason", "x"],
    "zones show": ["z-1"],
    "zones list": ["--county", "c"],
    "zones update": ["z-1", "--chief", ""],
    "townships list": ["--county", "c"],
    "townships place": ["t-1", "--county", "c", "--zone", "z", "--name", "n"]
    + ["--effective-from", "2026-01-01"],
    "registry changes": ["zone", "z-1"],
    "training record": ["p-1", "--course", "c", "--type", "case_study", "--hours", "1.5"]
    + ["--date", "2026-01-02"],
    "training list": ["p-1"],
    "attendance record": ["p-1", "--day", "2026-01-02", "--status", "on_assignment"],
    "attendance list": ["p-1"],
    "ranking": ["2026Q3", "--county", "c", "--level", "person"],
    "ranking show": ["--county", "c", "2026", "--zone", "z-1"],
    "ranking explain": ["z-1", "2026Q3", "--county", "c"],
    "scores show": ["z-1", "2026Q3", "--county", "c"],
    "scores explain": ["p-1", "2026Q3", "--county", "c", "--level", "person"],
    "scores mark": ["t-1", "2026Q3", "--county", "c", "--level", "township", "--points"]
    + ["3", "--reason", "x"],
    "plans define": ["{plan_file}"],
    "plans progress": ["--county", "c", "--year", "2026", "--quarter", "3"],
    "campaigns define": ["camp-1", "--county", "c", "--name", "n", "--domain", "d"]
    + ["--starts-on", "2026-01-01", "--ends-on", "2026-12-31", "--zone", "z-1"],
    "campaigns show": ["camp-1", "--county", "c"],
    "campaigns list": ["--county", "c"],
    "assessment close-quarter": ["2026Q3", "--county", "c"],
    "assessment export": ["--county", "c", "--year", "2026", "--out", "{out_dir}"],
    "letters send": ["case-1", "--county", "c", "--zone", "z", "--to", "c2", "--kind"]
    + ["verify_fact", "--question", "q"],
    "letters approve": ["l-1"],
    "letters accept": ["l-1"],
    "letters decline": ["l-1", "--ground", "g"],
    "letters answer": ["l-1", "--findings", "f"],
    "letters show": ["l-1"],
    "letters list": ["--county", "c"],
    "collaboration network show": [],
    "clues transfer": ["--county", "c", "--to", "c2", "--field", "subject_name=n"],
    "cases designate": ["--from", "c", "--to", "c2", "--field", "subject_name=n"],
    "clues trail": ["T-1"],
    "cases joint open": [
        "case-1",
        "--county",
        "c",
        "--partner",
        "c2",
        "--township",
        "t-1",
        "--kind",
        "discipline",
    ],
    "cases joint city-open": ["c", "c2", "--city", "city-1", "--kind", "discipline"],
    "cases joint decline": ["J-1", "--county", "c2", "--ground", "人员不足"],
    "cases joint close": ["J-1", "--county", "c", "--outcome", "concluded"],
    "cases joint list": ["--county", "c"],
    "cases joint accept": ["J-1", "--county", "c2", "--case", "case-2", "--township", "t-9"],
    "cases joint show": ["J-1", "--county", "c"],
}


def _filled(message: Message, depth: int = 0) -> Message:
    """Every field set: text names its field, numbers are small, repeated fields hold two."""
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and field.containing_oneof.fields[0] is not field:
            continue
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            container: Any = getattr(message, field.name)
            for i in range(2):
                key = _value(message, entry.fields_by_name["key"], depth, i)
                value = _value(message, entry.fields_by_name["value"], depth, i)
                if isinstance(value, Message):
                    container[key].CopyFrom(value)
                else:
                    container[key] = value
            continue
        values = [_value(message, field, depth, i) for i in range(2)]
        if field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for value in values:
                    getattr(message, field.name).add().CopyFrom(value)
            else:
                getattr(message, field.name).extend(values)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(values[0])
        else:
            setattr(message, field.name, values[0])
    return message


def _value(message: Message, field: Any, depth: int, index: int) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        nested: Any = GetMessageClass(field.message_type)()
        if isinstance(nested, Timestamp):
            nested.FromSeconds(1_780_000_000 + index * 86_400)
            return nested
        return _filled(nested, depth + 1) if depth < 4 else nested
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[min(1 + index, len(field.enum_type.values) - 1)].number
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 2.5 + index
    if field.type == FieldDescriptor.TYPE_STRING:
        return "{}" if field.name.endswith("_json") else f"{field.name}-{index}"
    return 3 + index


def _handlers() -> list[grpc.GenericRpcHandler]:
    """One generic handler per service answering every method with a filled response."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    pool = descriptor_pool.Default()
    for rpc in COMMAND_OF_RPC:
        service_name, method_name = rpc.rsplit(".", 1)
        method = pool.FindServiceByName(service_name).methods_by_name[method_name]
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)

        def answer(request: Any, context: Any, response_class: Any = response_class) -> Any:
            return _filled(response_class())

        by_service.setdefault(service_name, {})[method_name] = grpc.unary_unary_rpc_method_handler(
            answer,
            request_deserializer=request_class.FromString,
            response_serializer=lambda response: response.SerializeToString(),
        )
    return [grpc.method_handlers_generic_handler(s, m) for s, m in by_service.items()]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    """A threaded gRPC server in this process answering every RPC of every service."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(_handlers())
    bound = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield bound
    server.stop(grace=None)


def _argv(path: str, tmp_path: Path) -> list[str]:
    report = tmp_path / "report.yaml"
    report.write_text("county_id: c\nzone_id: z\ntownship_id: t\ncontent: x\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text("county_id: c\nyear: 2026\ntargets: [{quarter: 1, zone_id: z, kpi: k}]\n")
    files = {"report_file": report, "plan_file": plan, "out_dir": tmp_path / "out"}
    return [*path.split(), *(arg.format(**files) for arg in ARGS[path])]


def test_every_covered_command_has_arguments_here() -> None:
    also = {"clues dispose", "reports reject", "reports forward", "letters decline"}
    assert set(COMMAND_OF_RPC.values()) | also <= set(ARGS)


@pytest.mark.parametrize("path", sorted(ARGS))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_command_prints_a_full_answer(
    path: str, as_json: bool, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in SERVICES + STANDALONE_SERVICES:
        monkeypatch.setenv(f"XIEZUO_{service.upper()}_GRPC_PORT", str(port))
    argv = [*_argv(path, tmp_path), "--token", "t", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, (argv, result.output, result.exception)
    if as_json:
        assert json.loads(result.stdout)
    else:
        assert result.stdout.strip()
