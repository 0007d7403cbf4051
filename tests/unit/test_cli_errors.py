"""How a command reports a refused request: each field violation once, with its field."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status
from typer.testing import CliRunner
from xiezuo.cases.v1 import cases_pb2

from services.cli.client import EXIT_INVALID
from services.cli.main import app
from services.runtime.grpc.errors import FieldViolation, InvalidArgument

# What the in-process CaseService.GetClue answers with; set by each test.
Refusal = list[InvalidArgument]


@pytest.fixture
def refusal() -> Refusal:
    return []


@pytest.fixture
def cases_port(refusal: Refusal, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A CaseService in this process whose GetClue refuses with the test's InvalidArgument."""

    def get_clue(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(rpc_status.to_status(refusal[0].to_status()))

    handler = grpc.method_handlers_generic_handler(
        "xiezuo.cases.v1.CaseService",
        {
            "GetClue": grpc.unary_unary_rpc_method_handler(
                get_clue,
                request_deserializer=cases_pb2.GetClueRequest.FromString,
                response_serializer=lambda response: response.SerializeToString(),
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("XIEZUO_CASES_GRPC_PORT", str(port))
    yield port
    server.stop(grace=None)


def _refused(refusal: Refusal, error: InvalidArgument) -> str:
    refusal.append(error)
    result = CliRunner().invoke(app, ["clues", "show", "clue-1", "--token", "t"])
    assert result.exit_code == EXIT_INVALID, result.output
    return result.output


def test_a_field_violation_is_printed_once(refusal: Refusal, cases_port: int) -> None:
    output = _refused(refusal, InvalidArgument([FieldViolation("clue_id", "is required")]))
    assert output.count("clue_id: is required") == 1
    assert "the request was refused" in output


def test_several_violations_each_once_on_their_own_line(refusal: Refusal, cases_port: int) -> None:
    output = _refused(
        refusal,
        InvalidArgument(
            [FieldViolation("case_id", "is required"), FieldViolation("reason", "is required")]
        ),
    )
    assert output.count("case_id: is required") == 1
    assert output.count("reason: is required") == 1
    assert "  case_id: is required\n" in output and "  reason: is required\n" in output


def test_a_message_of_its_own_is_kept_beside_the_violations(
    refusal: Refusal, cases_port: int
) -> None:
    output = _refused(
        refusal,
        InvalidArgument([FieldViolation("action", "not allowed now")], "the case is closed"),
    )
    assert "the case is closed" in output
    assert output.count("action: not allowed now") == 1
