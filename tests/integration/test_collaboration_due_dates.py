"""The due-date scan on SQLite and PostgreSQL: reminded once, overdue once, per side."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import col, select

from services.collaboration.domain.letter_kinds import parse_letter_kinds
from services.collaboration.domain.network import parse_network
from services.collaboration.due_dates import DueDateScan
from services.collaboration.letters import LetterDesk
from services.collaboration.metrics import LetterMetrics
from services.collaboration.settings import DEFAULT_LETTER_KINDS_FILE
from services.collaboration.signing_keys import CountySigningKeys
from services.collaboration.store.network import import_network
from services.collaboration.store.tables import LetterRow
from services.contracts.collaboration import LetterDueSoon, LetterOverdue
from services.runtime.backentry import BACK_ENTRY_GRACE
from services.runtime.messaging_tables import OutboxMessage
from tests.collaboration_network import network_yaml
from tests.conftest import MakeDatabase

# Monday 7 December 2026, 09:00 in the counties (01:00 UTC).
NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def _letter(letter_id: str, *, direction: str, state: str, due: date) -> LetterRow:
    outbound = direction == "outbound"
    return LetterRow(
        county_id="county-a" if outbound else "county-b",
        letter_id=letter_id,
        direction=direction,
        counterpart_county="county-b" if outbound else "county-a",
        case_id="case-1" if outbound else None,
        zone_id="z-1" if outbound else None,
        kind="verify_fact",
        allowlist_version=1,
        network_version=1,
        question="请核实",
        fields_json="{}",
        excerpt="",
        due_date=due,
        state=state,
        requested_at=NOW,
        updated_at=NOW,
    )


async def test_open_letters_are_reminded_and_found_overdue_once(
    make_database: MakeDatabase,
) -> None:
    database = await make_database("collaboration")
    keys = {"county-a": Ed25519PrivateKey.generate(), "county-b": Ed25519PrivateKey.generate()}
    network, sha = parse_network(network_yaml(keys))
    async with database.transaction() as session:
        await import_network(session, network, sha256=sha, actor="test")
        for row in (
            # A awaits B's answer, due last Friday: overdue on A's side.
            _letter("L-late", direction="outbound", state="accepted", due=date(2026, 12, 4)),
            # B must answer by Tuesday: within two working days.
            _letter("L-soon", direction="inbound", state="accepted", due=date(2026, 12, 8)),
            # Answered late: nothing to say any more.
            _letter("L-done", direction="outbound", state="answered", due=date(2026, 12, 1)),
            # Due in two weeks: not yet.
            _letter("L-later", direction="inbound", state="received", due=date(2026, 12, 21)),
        ):
            session.add(row)
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    metrics = LetterMetrics()
    scan = DueDateScan(database, LetterDesk(kinds=kinds, keys=CountySigningKeys(keys)), metrics)

    first = await scan.scan(now=NOW)
    again = await scan.scan(now=NOW)

    assert first.overdue == [("county-a", "L-late")]
    assert first.reminded == [("county-b", "L-soon")]
    assert again.overdue == [] and again.reminded == []
    async with database.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    col(OutboxMessage.event_type).in_(
                        [LetterDueSoon.event_type, LetterOverdue.event_type]
                    )
                )
            )
        ).all()
    published = sorted((r.event_type, r.partition_key, json.loads(r.payload)) for r in rows)
    assert [(t, k, p["letter_id"]) for t, k, p in published] == [
        (LetterDueSoon.event_type, "county-b:*", "L-soon"),
        (LetterOverdue.event_type, "county-a:z-1", "L-late"),
    ]
    late = metrics.registry.get_sample_value(
        "xiezuo_collaboration_letter_steps_total",
        {
            "from_county": "county-a",
            "to_county": "county-b",
            "kind": "verify_fact",
            "step": "overdue_outbound",
        },
    )
    assert late == 1


async def test_a_letter_entered_after_the_fact_is_judged_only_after_the_grace(
    make_database: MakeDatabase,
) -> None:
    """补录: a letter approved on paper months ago is past due while its answer is entered."""
    database = await make_database("collaboration")
    keys = {"county-a": Ed25519PrivateKey.generate(), "county-b": Ed25519PrivateKey.generate()}
    network, sha = parse_network(network_yaml(keys))
    paper = NOW - timedelta(days=120)
    entered = _letter("L-paper", direction="outbound", state="accepted", due=date(2026, 8, 20))
    entered.requested_at = entered.approved_at = entered.decided_at = paper
    async with database.transaction() as session:
        await import_network(session, network, sha256=sha, actor="test")
        session.add(entered)
    kinds = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))
    scan = DueDateScan(database, LetterDesk(kinds=kinds, keys=CountySigningKeys(keys)))

    # Entered NOW: the office may still enter the answer that met the due date.
    assert (await scan.scan(now=NOW + timedelta(hours=1))).overdue == []
    # A day on, nobody entered it: overdue, as any letter.
    later = await scan.scan(now=NOW + BACK_ENTRY_GRACE + timedelta(minutes=1))
    assert later.overdue == [("county-a", "L-paper")]
