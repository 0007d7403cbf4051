"""Intake's reporter protection over real SQLite and PostgreSQL: receipts, reveals, deadlines."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from services.intake.domain.channels import ChannelDetails
from services.intake.domain.kinds import CadreLevel, Channel
from services.intake.domain.receipt import ReceiptKeys
from services.intake.domain.report import ReporterIdentity, Subject, Submission
from services.intake.domain.reveal import RevealRefused
from services.intake.domain.status import AcceptanceOutcome, ReportStatus
from services.intake.store.acceptance import AcceptanceDecision, AcceptanceDesk
from services.intake.store.exchange import OFFICER, REPORTER, ReporterChannel
from services.intake.store.receipts import (
    ReceiptClaim,
    ReceiptDesk,
    ReceiptLockedOut,
    ReceiptUnknown,
)
from services.intake.store.reports import ReportRegistry
from services.intake.store.reveals import RevealDesk
from services.intake.store.rotation import rewrap_all
from services.intake.store.rule_files import load_rule_book
from services.intake.store.tables import ReportRow
from services.intake.store.vault import Vault
from services.runtime.audit import AuditEntry
from services.runtime.db import Database
from services.runtime.messaging_tables import OutboxMessage
from tests.conftest import MakeDatabase

BOOK = load_rule_book()
KEK = bytes(range(32))
RECEIPT_KEYS = ReceiptKeys(bytes(range(32, 64)))
IDENTITY = ReporterIdentity("Zhao Liu", "110101199001011234", "13800000000", "Main St 1")


def _submission(key: str, *, real_name: bool = True) -> Submission:
    return Submission(
        idempotency_key=key,
        county_id="c1",
        zone_id="z1",
        township_id="t1",
        channel=Channel.VILLAGE_INFORMANT,
        subject=Subject("Wang Wu", "secretary", "committee", "t1", "", CadreLevel.VILLAGE),
        allegation_categories=("poverty_alleviation_funds",),
        content="Fake subsidy claims in 2025.",
        reporter=IDENTITY if real_name else None,
        campaign_id=None,
        channel_details=ChannelDetails("village_informant", {"informant_id": "inf-42"}),
        # Received long ago, so the 15-working-day feedback limit has passed.
        received_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )


async def _register(db: Database, key: str, *, real_name: bool = True) -> tuple[str, str]:
    registry = ReportRegistry(db, Vault(KEK), BOOK, RECEIPT_KEYS)
    registration = await registry.register(_submission(key, real_name=real_name), actor="officer")
    return registration.report_id, registration.receipt_code


async def _audit_actions(db: Database, record_id: str) -> list[str]:
    async with db.session() as session:
        query = (
            select(AuditEntry.action)
            .where(AuditEntry.record_id == record_id)
            .order_by(col(AuditEntry.id))
        )
        return list((await session.exec(query)).all())


async def test_a_receipt_finds_its_report_and_guessing_is_locked_out(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    report_id, code = await _register(db, "k1")
    desk = ReceiptDesk(db, BOOK, RECEIPT_KEYS)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    found = await desk.find(ReceiptClaim("c1", code, "client-a"), actor="portal", now=now)
    assert found.report_id == report_id

    guard = BOOK.rules_on(now.date()).receipt_guard
    wrong = code[:4] + ("0" * 12 if code[4:] != "0" * 12 else "1" * 12)
    for _ in range(guard.max_failures_per_caller):
        with pytest.raises(ReceiptUnknown):
            await desk.find(ReceiptClaim("c1", wrong, "attacker"), actor="portal", now=now)
    # Now even the right code is refused to that caller: guessing cannot go on.
    with pytest.raises(ReceiptLockedOut):
        await desk.find(ReceiptClaim("c1", code, "attacker"), actor="portal", now=now)
    # Another caller is not locked (the county's budget is higher), and the lockout ends.
    assert await desk.find(ReceiptClaim("c1", code, "client-b"), actor="portal", now=now)
    later = now + timedelta(minutes=guard.lockout_minutes + guard.window_minutes + 1)
    assert await desk.find(ReceiptClaim("c1", code, "attacker"), actor="portal", now=later)
    async with db.session() as session:
        failures = (
            await session.exec(
                select(AuditEntry.action).where(AuditEntry.action == "receipt.lookup_failed")
            )
        ).all()
        locked = (
            await session.exec(
                select(AuditEntry.action).where(AuditEntry.action == "receipt.locked_out")
            )
        ).all()
    assert len(failures) == guard.max_failures_per_caller and len(locked) == 1


def _wrong(code: str, seed: int) -> str:
    """A well-formed code that is not `code`, with a prefix of its own for each seed < 100."""
    prefix = f"{(seed + 1) * 97 % 10_000:04d}"
    last = code[-1] if prefix != code[:4] else str((int(code[-1]) + 1) % 10)
    return prefix + code[4:-1] + last


async def test_guesses_from_ever_new_sources_are_throttled_county_wide(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    _, code = await _register(db, "k1")
    desk = ReceiptDesk(db, BOOK, RECEIPT_KEYS)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    guard = BOOK.rules_on(now.date()).receipt_guard
    checked, refused = 0, 0
    for attempt in range(100):
        # Every guess from a new caller reference: no source ever reaches its own limit.
        claim = ReceiptClaim("c1", _wrong(code, attempt), f"bot-{attempt}")
        try:
            await desk.find(claim, actor="portal", now=now + timedelta(seconds=attempt))
        except ReceiptUnknown:
            checked += 1
        except ReceiptLockedOut:
            refused += 1
    assert checked == guard.max_failures_per_county and refused == 100 - checked
    # While the county's window is full, a code is not even checked (right or wrong)...
    later = now + timedelta(seconds=100)
    with pytest.raises(ReceiptLockedOut):
        await desk.find(ReceiptClaim("c1", code, "fresh"), actor="portal", now=later)
    # ...and the back-off ends once the failures have left the window.
    drained = now + timedelta(minutes=guard.window_minutes, seconds=1)
    assert await desk.find(ReceiptClaim("c1", code, "fresh"), actor="portal", now=drained)


async def test_strangers_guessing_near_a_real_code_never_lock_its_holder_out(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    report_id, code = await _register(db, "k1")
    desk = ReceiptDesk(db, BOOK, RECEIPT_KEYS)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    guard = BOOK.rules_on(now.date()).receipt_guard
    # Wrong guesses sharing the real code's first eight digits, from several sources, up to
    # just under the county's budget (each source stays under its own limit too).
    for attempt in range(guard.max_failures_per_county - 1):
        guess = code[:8] + f"{(int(code[8:]) + attempt + 1) % 10**8:08d}"
        source = f"stranger-{attempt % 10}"
        with pytest.raises(ReceiptUnknown):
            await desk.find(ReceiptClaim("c1", guess, source), actor="portal", now=now)
    found = await desk.find(ReceiptClaim("c1", code, "holder"), actor="portal", now=now)
    assert found.report_id == report_id


async def test_a_legacy_scrypt_receipt_is_found_and_rehashed_under_the_key(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    report_id, _ = await _register(db, "k1")
    code = "4711000000000042"
    salt = bytes(range(16))
    digest = hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    async with db.transaction() as session:
        row = await session.get(ReportRow, report_id)
        assert row is not None
        # As intake stored receipts before intake_0007.
        row.receipt_hash = f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"
        row.receipt_prefix = code[:4]
        session.add(row)
    desk = ReceiptDesk(db, BOOK, RECEIPT_KEYS)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with pytest.raises(ReceiptUnknown):
        await desk.find(ReceiptClaim("c1", code[:15] + "3", "a"), actor="portal", now=now)
    assert (await desk.find(ReceiptClaim("c1", code, "a"), actor="portal", now=now)).report_id == (
        report_id
    )
    async with db.session() as session:
        upgraded = await session.get(ReportRow, report_id)
    assert upgraded is not None and upgraded.receipt_prefix is None
    assert upgraded.receipt_hash == RECEIPT_KEYS.digest(code)
    assert (await desk.find(ReceiptClaim("c1", code, "b"), actor="portal", now=now)).report_id == (
        report_id
    )


async def test_reveal_needs_a_custodians_approval_and_works_once(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    report_id, _ = await _register(db, "k1")
    desk = RevealDesk(db, Vault(KEK))
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    async with db.session() as session:
        report = await session.get(ReportRow, report_id)
    assert report is not None
    request_id = await desk.file(
        report, officer="officer-a", reason="verify", idempotency_key="r1", now=now
    )
    assert (
        await desk.file(report, officer="officer-a", reason="verify", idempotency_key="r1", now=now)
        == request_id
    )
    with pytest.raises(RevealRefused):
        await desk.reveal(request_id, reader="officer-a", now=now)
    with pytest.raises(RevealRefused, match="different person"):
        await desk.decide(request_id, custodian="officer-a", approve=True, reason="x", now=now)
    await desk.decide(request_id, custodian="custodian-b", approve=True, reason="ok", now=now)
    with pytest.raises(RevealRefused):
        await desk.reveal(request_id, reader="officer-c", now=now)
    assert await desk.reveal(request_id, reader="officer-a", now=now) == IDENTITY
    with pytest.raises(RevealRefused, match="already been used"):
        await desk.reveal(request_id, reader="officer-a", now=now)
    actions = await _audit_actions(db, report_id)
    assert actions.count("identity.revealed") == 1
    assert "identity.reveal_requested" in actions and "identity.reveal_approved" in actions
    async with db.session() as session:
        details = (
            await session.exec(select(AuditEntry.detail).where(AuditEntry.record_id == report_id))
        ).all()
    for secret in (IDENTITY.full_name, IDENTITY.id_number, IDENTITY.phone, "inf-42"):
        assert all(secret not in detail for detail in details)


async def test_messages_both_ways_and_acceptance_tells_the_reporter(
    make_database: MakeDatabase,
) -> None:
    db = await make_database("intake")
    report_id, _ = await _register(db, "k1")
    vault = Vault(KEK)
    channel = ReporterChannel(db, vault)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    async with db.session() as session:
        report = await session.get(ReportRow, report_id)
    assert report is not None
    first = await channel.send(
        report, author=REPORTER, body="More facts", idempotency_key="m1", actor="p", now=now
    )
    again = await channel.send(
        report, author=REPORTER, body="More facts", idempotency_key="m1", actor="p", now=now
    )
    assert first == again
    await channel.send(
        report, author=OFFICER, body="Thank you", idempotency_key="m1", actor="o", now=now
    )
    status = await AcceptanceDesk(db, vault).decide(
        report_id,
        AcceptanceDecision(AcceptanceOutcome.NOT_ACCEPT, "court_matter", "A civil dispute", ""),
        actor="officer",
        now=now,
    )
    assert status is ReportStatus.NOT_ACCEPTED
    messages = await channel.read(report, after_seq=0, limit=10, actor="p", now=now)
    assert [(m.author, m.body) for m in messages] == [
        ("reporter", "More facts"),
        ("officer", "Thank you"),
        ("system", "Your report was not accepted: A civil dispute"),
    ]
    async with db.session() as session:
        types = (await session.exec(select(OutboxMessage.event_type))).all()
    assert "xiezuo.intake.report_rejected.v1" in types


async def test_feedback_breach_is_published_exactly_once(make_database: MakeDatabase) -> None:
    db = await make_database("intake")
    late, _ = await _register(db, "late")
    await _register(db, "anonymous", real_name=False)
    decided, _ = await _register(db, "decided")
    desk = AcceptanceDesk(db, Vault(KEK))
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    await desk.decide(
        decided, AcceptanceDecision(AcceptanceOutcome.ACCEPT, "", "", ""), actor="o", now=now
    )
    assert await desk.scan_feedback_deadlines(now=now) == [late]
    assert await desk.scan_feedback_deadlines(now=now + timedelta(days=1)) == []
    async with db.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.event_type == "xiezuo.intake.feedback_deadline_breached.v1"
                )
            )
        ).all()
    assert len(rows) == 1
    assert json.loads(rows[0].payload)["report_id"] == late


async def test_key_rotation_rewraps_without_reencrypting(make_database: MakeDatabase) -> None:
    db = await make_database("intake")
    report_id, _ = await _register(db, "k1")
    old = Vault(KEK)
    channel = ReporterChannel(db, old)
    async with db.session() as session:
        report = await session.get(ReportRow, report_id)
    assert report is not None
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    await channel.send(
        report, author=REPORTER, body="hello", idempotency_key="m", actor="p", now=now
    )
    new_key = bytes(reversed(range(32)))
    rotated = Vault(new_key, retired=[KEK])
    counts = await rewrap_all(db, rotated, actor="test")
    assert counts == {
        "report": 1,
        "reporter_identity": 1,
        "report_channel_detail": 1,
        "reporter_message": 1,
    }
    async with db.session() as session:
        after = await session.get(ReportRow, report_id)
    assert after is not None
    assert after.content_kek_id == rotated.kek_id
    assert after.content_ciphertext == report.content_ciphertext
    only_new = Vault(new_key)
    messages = await ReporterChannel(db, only_new).read(
        after, after_seq=0, limit=5, actor="p", now=now
    )
    assert [m.body for m in messages] == ["hello"]
    assert await rewrap_all(db, rotated, actor="test") == dict.fromkeys(counts, 0)


async def test_issuing_and_finding_a_receipt_never_runs_a_slow_hash(
    make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_hash(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("scrypt on the request path")

    # A keyed hash costs microseconds; only a legacy receipt ever needs scrypt (off the loop).
    monkeypatch.setattr(hashlib, "scrypt", slow_hash)
    db = await make_database("intake")
    report_id, code = await _register(db, "k1")
    desk = ReceiptDesk(db, BOOK, RECEIPT_KEYS)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert (await desk.find(ReceiptClaim("c1", code, "a"), actor="portal", now=now)).report_id == (
        report_id
    )
