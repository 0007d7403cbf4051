"""`xiezuo dead-letter list|replay`: see what a service parked, and send it back."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.runtime.deadletters import DeadLetter, read_dead_letters, replay
from services.runtime.settings import SERVICES, PlatformSettings

app = typer.Typer(help="Records a service could not apply.", no_args_is_help=True)
console = Console(stderr=True)

ServiceArg = Annotated[str, typer.Argument(help="intake, cases, staffing or assessment")]


def _service(name: str) -> str:
    if name not in SERVICES:
        console.print(f"[red]unknown service {name!r}[/red]; expected one of {', '.join(SERVICES)}")
        raise typer.Exit(2)
    return name


def _read(service: str, limit: int) -> list[DeadLetter]:
    bootstrap = PlatformSettings().kafka_bootstrap
    try:
        return asyncio.run(read_dead_letters(bootstrap, service, limit=limit))
    except Exception as exc:  # the broker being down is an operator's problem, not a traceback
        console.print(f"[red]cannot read dead letters from Kafka at {bootstrap}:[/red] {exc}")
        raise typer.Exit(1) from exc


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
    sent = asyncio.run(replay(PlatformSettings().kafka_bootstrap, letters))
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
