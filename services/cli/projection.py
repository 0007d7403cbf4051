"""`xiezuo projection rebuild assessment`: empty assessment's projection and replay the log.

Assessment's KPI projection is built only from events, so it can be rebuilt: with the service
stopped, its consumer group's offsets go back to the first retained record, the projection
tables and the group's inbox rows are emptied, and the next start applies the whole log again.
Tables assessment owns (marks, plans, campaigns, closed quarters, command receipts) are kept.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from rich.markup import escape
from sqlalchemy import Table, delete, func
from sqlmodel import SQLModel, col, select

from services.cli.client import console, fail
from services.runtime.db import Database
from services.runtime.kafka_security import client_kwargs
from services.runtime.messaging_tables import InboxEntry
from services.runtime.settings import Settings

app = typer.Typer(help="Projections rebuilt from the event log.", no_args_is_help=True)

# What assessment builds from events (store/projection.py's projection_rows reads the same
# tables) and what it owns; tests/unit/test_cli_projection.py fails on a table in neither.
PROJECTION_TABLES = {
    "assessment": (
        "kpi_tally",
        "kpi_contribution",
        "assessed_unit",
        "campaign_clue",
        "case_milestone",
        "attendance_day",
        "limit_clock",
        "limit_breach",
        "campaign_rectification",
        "form_outcome",
        "case_subject",
        "team_request",
        "case_team",
        "case_work_step",
        "unit_name",
        "help_letter",
    ),
}
OWNED_TABLES = {
    "assessment": (
        "qualitative_mark",
        "command_receipt",
        "work_plan",
        "work_plan_target",
        "quarter_close",
        "campaign",
    ),
}
# Exit codes beside the CLI's own: the service is running, or history was deleted.
EXIT_RUNNING, EXIT_HISTORY_LOST, EXIT_KAFKA = 8, 9, 3


@dataclass(frozen=True)
class GroupState:
    """Where the service's consumer group stands on the broker."""

    members: int
    committed: dict[TopicPartition, int]
    first_retained: dict[TopicPartition, int]


def table_named(name: str) -> Table:
    """A service table by name (each service's store module registers its tables on import)."""
    table: Table = SQLModel.metadata.tables[name]
    return table


def group_of(service: str, prefix: str = "xiezuo") -> str:
    """The consumer group of a service (runtime/inbox.py's group_id)."""
    return f"{prefix}-{service}"


def inbox_of(service: str) -> str:
    """The inbox name of a service (runtime/inbox.py's consumer_name), whatever its group."""
    return f"xiezuo-{service}"


async def _group_state(settings: Settings, group: str) -> GroupState:
    options = client_kwargs(settings.platform.kafka_security())
    bootstrap = settings.platform.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    offsets = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **options
    )
    await admin.start()
    await offsets.start()
    try:
        described = await admin.describe_consumer_groups([group])
        members = len(described[0].groups[0][5]) if described and described[0].groups else 0
        found = await admin.list_consumer_group_offsets(group)
        committed = {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
        first = await offsets.beginning_offsets(list(committed)) if committed else {}
        return GroupState(members, committed, dict(first))
    finally:
        await offsets.stop()
        await admin.close()


async def _rewind(settings: Settings, group: str, to: dict[TopicPartition, int]) -> None:
    """Commit the group's offsets back to `to` (the group has no members, so no rebalance)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.platform.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **client_kwargs(settings.platform.kafka_security()),
    )
    await consumer.start()
    try:
        consumer.assign(list(to))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in to.items()})
    finally:
        await consumer.stop()


async def _empty(settings: Settings, service: str) -> dict[str, int]:
    """Delete the projection rows and the group's inbox rows in one transaction; rows deleted."""
    importlib.import_module(f"services.{service}.store.tables")  # registers its tables
    database = Database(settings.database_url, audit_key=settings.audit_key())
    deleted: dict[str, int] = {}
    try:
        async with database.transaction() as session:
            for table in PROJECTION_TABLES[service]:
                counted = await session.exec(select(func.count()).select_from(table_named(table)))
                deleted[table] = counted.one()
                await session.exec(delete(table_named(table)))
            mine = col(InboxEntry.consumer) == inbox_of(service)
            deleted["inbox_entry"] = (await session.exec(select(func.count()).where(mine))).one()
            await session.exec(delete(InboxEntry).where(mine))
    finally:
        await database.dispose()
    return deleted


@app.command("rebuild")
def rebuild(
    service: Annotated[str, typer.Argument(help="Whose projection: assessment")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    allow_partial_history: Annotated[
        bool,
        typer.Option(
            help="Rebuild although retention deleted the log's first records (their counts are "
            "lost for good)"
        ),
    ] = False,
) -> None:
    """Empty a projection and rewind its consumer group; the next start replays the log.

    Stop the service first (exit 8 while it has consumers). Exit 9 when retention has deleted
    records the projection counted, unless --allow-partial-history.
    """
    if service not in PROJECTION_TABLES:
        fail(
            f"{service!r} has no projection to rebuild; expected " + ", ".join(PROJECTION_TABLES),
            2,
        )
    settings = Settings(service)
    group = group_of(service, settings.platform.kafka_group_prefix)
    try:
        state = asyncio.run(_group_state(settings, group))
    except Exception as exc:  # an unreachable broker is the operator's to fix; say so plainly
        fail(
            f"cannot read group {group} from Kafka at {settings.platform.kafka_bootstrap}: {exc}",
            EXIT_KAFKA,
        )
    if state.members:
        fail(
            f"{service} is running ({state.members} consumer(s) in group {group}); stop every "
            "replica first",
            EXIT_RUNNING,
        )
    lost = {tp: first for tp, first in state.first_retained.items() if first > 0}
    if lost and not allow_partial_history:
        where = ", ".join(
            f"{tp.topic}[{tp.partition}] from {first}" for tp, first in sorted(lost.items())
        )
        fail(
            f"retention deleted the start of the log ({where}); a rebuild would lose what those "
            "records counted. Pass --allow-partial-history to rebuild anyway",
            EXIT_HISTORY_LOST,
        )
    records = sum(state.committed[tp] - state.first_retained.get(tp, 0) for tp in state.committed)
    if not yes:
        typer.confirm(
            f"Empty {service}'s projection ({len(PROJECTION_TABLES[service])} tables) and replay "
            f"{records} records from {len(state.committed)} partitions on its next start?",
            abort=True,
        )
    # Offsets first: if emptying then fails, the replay meets an intact inbox and changes nothing.
    asyncio.run(
        _rewind(settings, group, {tp: state.first_retained.get(tp, 0) for tp in state.committed})
    )
    deleted = asyncio.run(_empty(settings, service))
    rows = sum(count for table, count in deleted.items() if table != "inbox_entry")
    console.print(
        f"{escape(service)}: {rows} projection rows and {deleted['inbox_entry']} inbox rows "
        f"deleted; group {escape(group)} rewound over {len(state.committed)} partitions "
        f"({records} records). Start {escape(service)} to rebuild."
    )
