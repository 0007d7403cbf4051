"""What every operator command that talks to a service shares: token, address, errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol, TypeVar

import grpc
import typer
import yaml
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.runtime.grpc.errors import field_violations
from services.runtime.settings import Settings

T = TypeVar("T")
M = TypeVar("M", bound=Message)
V = TypeVar("V", covariant=True)
console = Console(stderr=True)

TokenOption = Annotated[
    str | None,
    typer.Option("--token", help="Bearer token (else $XIEZUO_TOKEN, else the profile file)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the call")]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key", help="Reuse a key to retry safely (a fresh one is made if omitted)"
    ),
]

# Exit codes a script can branch on; 1 stays "something else went wrong".
EXIT_INVALID, EXIT_UNREACHABLE, EXIT_UNAUTHENTICATED, EXIT_DENIED, EXIT_NOT_FOUND = 2, 3, 4, 5, 6


def profile_path() -> Path:
    """`$XIEZUO_PROFILE`, or ~/.config/xiezuo/profile.json."""
    configured = os.environ.get("XIEZUO_PROFILE")
    if configured:
        return Path(configured)
    return Path.home() / ".config" / "xiezuo" / "profile.json"


def resolve_token(explicit: str | None) -> str:
    """The token to send, or a clear exit when there is none."""
    token = explicit or os.environ.get("XIEZUO_TOKEN")
    if not token:
        path = profile_path()
        if path.exists():
            try:
                token = json.loads(path.read_text()).get("token")
            except (OSError, ValueError) as exc:
                fail(f"cannot read the profile {path}: {exc}", EXIT_UNAUTHENTICATED)
    if not token:
        fail(
            "no token: pass --token, set XIEZUO_TOKEN, or run `xiezuo profile set --token ...`",
            EXIT_UNAUTHENTICATED,
        )
    return str(token)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an operator-facing error and exit (never a traceback)."""
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@dataclass(frozen=True)
class ServiceCall:
    """One call to one service, with the caller's token."""

    service: str
    token: str
    timeout: float = 10.0

    @property
    def address(self) -> str:
        """Where the service listens (XIEZUO_<SERVICE>_GRPC_HOST/PORT)."""
        return Settings(self.service).grpc_address

    def run(
        self, call: Callable[[grpc.aio.Channel, tuple[tuple[str, str], ...]], Awaitable[T]]
    ) -> T:
        """Open a channel, make the call, and turn gRPC failures into operator messages."""

        async def go() -> T:
            async with grpc.aio.insecure_channel(self.address) as channel:
                return await call(channel, (("authorization", f"Bearer {self.token}"),))

        try:
            return asyncio.run(go())
        except grpc.aio.AioRpcError as error:
            self._explain(error)

    def _explain(self, error: grpc.aio.AioRpcError) -> NoReturn:
        code, details = error.code(), error.details() or ""
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            fail(
                f"{self.service} is not reachable at {self.address} ({code.name}); "
                "is the platform running (`xiezuo up`, `xiezuo status`)?",
                EXIT_UNREACHABLE,
            )
        if code is grpc.StatusCode.UNAUTHENTICATED:
            fail(f"the token was refused: {details}", EXIT_UNAUTHENTICATED)
        if code is grpc.StatusCode.PERMISSION_DENIED:
            fail(f"not allowed: {details}", EXIT_DENIED)
        if code is grpc.StatusCode.NOT_FOUND:
            fail(f"not found: {details}", EXIT_NOT_FOUND)
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            violations = [
                f"{field}: {description}" for field, description in field_violations(error)
            ]
            # The status message usually restates the violations ("invalid request: a: ..."):
            # then each is printed once, on its own line.
            restated = bool(violations) and all(violation in details for violation in violations)
            lines = [
                "the request was refused:" + ("" if restated or not details else f" {details}")
            ]
            lines += [f"  {violation}" for violation in violations]
            fail("\n".join(lines), EXIT_INVALID)
        fail(f"{self.service} answered {code.name}: {details}")


def emit(message: Message, *, as_json: bool) -> None:
    """Print a response as JSON (for scripts) or as indented text."""
    data: dict[str, Any] = MessageToDict(message, preserving_proto_field_name=True)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if as_json:
        print(text)
    else:
        Console().print_json(text)


def write_profile(token: str) -> Path:
    """Store the token in the profile file, readable by its owner only."""
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"token": token}, out)
    if sys.platform != "win32":
        path.chmod(0o600)
    return path


def stdout_console() -> Console:
    """Console for tables: as wide as needed when piped, so ids are never wrapped."""
    return Console() if sys.stdout.isatty() else Console(width=240)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print rows as a table on stdout."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    stdout_console().print(table)


def when(stamp: Timestamp) -> str:
    """A timestamp as UTC to the minute, or "-" when unset."""
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M")


def enum_label(name: str, prefix: str) -> str:
    """`CLUE_STATUS_CASE_FILED` → `case filed`."""
    return name.removeprefix(prefix).replace("_", " ").lower()


def call(
    service: str,
    stub: Callable[[grpc.aio.Channel], Any],
    method: str,
    request: Message,
    token: str | None,
    timeout: float,
) -> Any:
    """One unary call of `method` on `service` with the caller's token; failures exit."""
    return ServiceCall(service, resolve_token(token), timeout).run(
        lambda channel, metadata: getattr(stub(channel), method)(
            request, metadata=metadata, timeout=timeout
        )
    )


def fresh_key(given: str | None) -> str:
    """The --idempotency-key given, or a new one for this invocation."""
    return given or uuid.uuid4().hex


class EnumType(Protocol[V]):
    """A generated protobuf enum (its class), as far as the CLI uses it."""

    DESCRIPTOR: EnumDescriptor

    def Value(self, name: str) -> V: ...


def choice(enum: EnumType[V], prefix: str, value: str, option: str) -> V:
    """`close_relative_of_subject` → the enum number; an unknown name exits 2 listing the names."""
    name = prefix + value.strip().upper().replace("-", "_")
    if name == f"{prefix}UNSPECIFIED" or name not in enum.DESCRIPTOR.values_by_name:
        expected = ", ".join(choices(enum, prefix))
        fail(f"{option} {value!r}: expected one of {expected}", EXIT_INVALID)
    return enum.Value(name)


def choices(enum: EnumType[Any], prefix: str) -> list[str]:
    """The names an enum option accepts, in the CLI's lower-case spelling."""
    names = [value.name for value in enum.DESCRIPTOR.values]
    return [name.removeprefix(prefix).lower() for name in names if not name.endswith("UNSPECIFIED")]


def load_request(file: Path, request: M, *, defaults: dict[str, Any] | None = None) -> M:
    """A request message read from a JSON or YAML file of its fields; bad input exits 2."""
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        fail(f"cannot read {file}: {exc}", EXIT_INVALID)
    if not isinstance(data, dict):
        fail(
            f"{file} must hold one mapping of {request.DESCRIPTOR.name} fields",
            EXIT_INVALID,
        )
    for field, value in (defaults or {}).items():
        data.setdefault(field, value)
    try:
        return ParseDict(data, request)
    except ParseError as exc:
        fail(f"{file}: {exc}", EXIT_INVALID)


def next_page(token: str) -> None:
    """Tell the operator how to ask for the next page, if there is one."""
    if token:
        console.print(f"next page: --page-token {json.dumps(token)}")
