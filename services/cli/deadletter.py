"""`xiezuo dead-letter list|replay`: see what a service parked, and send it back."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.runtime.deadletters import DeadLetter, read_dead_letters, replay
from services.runtime.settings import SERVICES, PlatformSettings

T = TypeVar("T")
app = typer.Typer(help="Records a service could not apply.", no_args_is_help=True)
console = Console(stderr=True)

ServiceArg = Annotated[str, typer.Argument(help="intake, cases, staffing or assessment")]


def _service(name: str) -> str:
    if name not in SERVICES:
        console.print(f"[red]unknown service {name!r}[/red]; expected one of {', '.join(SERVICES)}")
        raise typer.Exit(2)
    return name


# Exit codes (docs/operations.md): 0 done, 1 asked-for records not found, 2 usage, 3 Kafka
# not reachable.
KAFKA_UNREACHABLE = 3


def _kafka_failed(action: str, bootstrap: str, exc: Exception) -> typer.Exit:
    # The broker being down is an operator's problem: one line, no traceback.
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not detail.startswith(type(exc).__name__):
        detail = f"{type(exc).__name__}: {detail}".rstrip(": ")
    console.print(
        f"[red]cannot {action} Kafka at {bootstrap}:[/red] {escape(detail)}", soft_wrap=True
    )
    return typer.Exit(KAFKA_UNREACHABLE)


def _quietly(work: Coroutine[Any, Any, T]) -> T:
    # aiokafka logs each failed connection itself; the command says it once, in its own words.
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(work)
    finally:
        client_log.setLevel(level)


def _read(service: str, limit: int) -> list[DeadLetter]:
    platform = PlatformSettings()
    bootstrap, security = platform.kafka_bootstrap, platform.kafka_security()
    try:
        return _quietly(read_dead_letters(bootstrap, service, limit=limit, security=security))
    except Exception as exc:
        raise _kafka_failed("read dead letters from", bootstrap, exc) from exc


@app.command("list")
def list_letters(
    service: ServiceArg,
    limit: Annotated[int, typer.Option(help="At most this many records")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the parked records with their reason and origin."""
    letters = _read(_service(service), limit)
    if as_json:
        print(json.dumps([_summary(letter) for letter in letters], indent=2))
        return
    table = Table(title=f"{service}: {len(letters)} dead letter(s)")
    for column in ("event id", "type", "reason", "origin", "error"):
        table.add_column(column)
    for letter in letters:
        origin = f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}"
        table.add_row(letter.event_id, letter.event_type, letter.reason, origin, letter.error[:80])
    Console().print(table)


@app.command("replay")
def replay_letters(
    service: ServiceArg,
    event_id: Annotated[list[str] | None, typer.Option(help="Only these event ids")] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="Every parked record")] = False,
) -> None:
    """Publish parked records to their original topic again (after fixing the cause)."""
    if not event_id and not all_letters:
        console.print("[red]say which records:[/red] --event-id ID (repeatable) or --all")
        raise typer.Exit(2)
    letters = _read(_service(service), 100_000)
    if event_id:
        wanted = set(event_id)
        letters = [letter for letter in letters if letter.event_id in wanted]
        missing = wanted - {letter.event_id for letter in letters}
        if missing:
            console.print(f"[red]not on the dead-letter topic:[/red] {', '.join(sorted(missing))}")
            raise typer.Exit(1)
    platform = PlatformSettings()
    bootstrap, security = platform.kafka_bootstrap, platform.kafka_security()
    try:
        sent = _quietly(replay(bootstrap, letters, security=security))
    except Exception as exc:
        raise _kafka_failed("replay dead letters to", bootstrap, exc) from exc
    console.print(f"replayed {sent} record(s); consumers skip any they already applied")


def _summary(letter: DeadLetter) -> dict[str, str]:
    return {
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "reason": letter.reason,
        "error": letter.error,
        "attempts": letter.attempts,
        "original_topic": letter.original_topic,
        "original_partition": letter.original_partition,
        "original_offset": letter.original_offset,
        "dead_lettered_at": letter.dead_lettered_at,
    }
