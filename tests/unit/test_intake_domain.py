"""Intake's pure rules: submission checks, receipt codes and the vault."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag

from services.intake.domain import receipt
from services.intake.domain.receipt import ReceiptKeys, legacy_receipt_matches, new_receipt_code
from services.intake.domain.report import (
    CadreLevel,
    Channel,
    ReporterIdentity,
    Subject,
    Submission,
    check_submission,
)
from services.intake.store.vault import Vault

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def submission(**changes: object) -> Submission:
    base: dict[str, object] = {
        "idempotency_key": "key-1",
        "county_id": "c1",
        "zone_id": "z1",
        "township_id": "t1",
        "channel": Channel.LETTER,
        "subject": Subject(
            "Wang Wu", "secretary", "village committee", "t1", "", CadreLevel.VILLAGE
        ),
        "allegation_categories": ("poverty_alleviation_funds",),
        "content": "Fake subsidy claims in 2025.",
        "reporter": None,
        "campaign_id": None,
    }
    base.update(changes)
    return Submission(**base)  # type: ignore[arg-type]


def test_a_complete_anonymous_report_passes() -> None:
    assert check_submission(submission(), now=NOW) == []


def test_every_missing_field_is_named() -> None:
    problems = check_submission(
        submission(
            idempotency_key="",
            county_id="",
            channel=None,
            subject=None,
            allegation_categories=(),
            content="  ",
        ),
        now=NOW,
    )
    fields = [field for field, _ in problems]
    assert fields == [
        "idempotency_key",
        "county_id",
        "channel",
        "subject",
        "allegation_categories",
        "content",
    ]


def test_bad_category_codes_point_at_their_index() -> None:
    problems = check_submission(submission(allegation_categories=("bribery", "Bad Code")), now=NOW)
    assert problems == [("allegation_categories[1]", "must be a lower_snake_case category code")]


def test_campaign_channel_needs_a_campaign() -> None:
    problems = check_submission(submission(channel=Channel.SPECIAL_CAMPAIGN), now=NOW)
    assert [field for field, _ in problems] == ["campaign_id"]


def test_real_name_report_needs_a_name_and_a_way_back() -> None:
    reporter = ReporterIdentity(full_name="", id_number="", phone="", address="")
    problems = check_submission(submission(reporter=reporter), now=NOW)
    assert [field for field, _ in problems] == ["reporter.full_name", "reporter.phone"]


def test_future_receipt_time_is_refused() -> None:
    problems = check_submission(submission(received_at=NOW + timedelta(days=1)), now=NOW)
    assert [field for field, _ in problems] == ["received_at"]


def test_reporter_identity_never_shows_in_its_repr() -> None:
    identity = ReporterIdentity("Li Si", "110101199001011234", "13800000000", "Main St 1")
    assert "Li Si" not in repr(identity) and "1380" not in repr(identity)


def test_a_receipt_code_keeps_its_leading_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    # One draw below 10**16: a small draw is still a 16-digit code, and the largest is all 9s.
    monkeypatch.setattr(receipt.secrets, "randbelow", lambda bound: 42)
    assert new_receipt_code() == "0000000000000042"
    monkeypatch.setattr(receipt.secrets, "randbelow", lambda bound: bound - 1)
    assert new_receipt_code() == "9" * 16


def test_receipt_codes_are_16_digits_and_their_keyed_hash_needs_the_key() -> None:
    code = new_receipt_code()
    assert len(code) == 16 and code.isdigit()
    keys = ReceiptKeys(bytes(range(32)))
    stored = keys.digest(code)
    assert code not in stored and stored.startswith("hmac-sha256$")
    assert keys.digests(code) == [stored]
    other = "0" * 16 if code != "0" * 16 else "1" * 16
    assert keys.digest(other) != stored
    # Another key gives another hash: the database alone cannot be searched for codes.
    assert ReceiptKeys(bytes(32)).digest(code) != stored
    # After rotation the retired key's hash is still among the ones looked up.
    rotated = ReceiptKeys(bytes(32), retired=[bytes(range(32))])
    assert stored in rotated.digests(code) and rotated.digest(code) != stored


def test_a_legacy_scrypt_receipt_still_verifies() -> None:
    code = "1234567890123456"
    salt = bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    stored = f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"
    assert legacy_receipt_matches(code, stored)
    assert not legacy_receipt_matches("1234567890123457", stored)
    assert not legacy_receipt_matches(code, "garbage")


def test_vault_round_trip_and_tamper_detection() -> None:
    vault = Vault(bytes(range(32)))
    sealed = vault.seal(b"Li Si", context=b"rpt-1")
    assert b"Li Si" not in sealed.ciphertext
    assert vault.open(sealed, context=b"rpt-1") == b"Li Si"
    with pytest.raises(InvalidTag):
        vault.open(sealed, context=b"rpt-2")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(InvalidTag):
        vault.open(
            type(sealed)(sealed.kek_id, sealed.wrapped_key, sealed.nonce, flipped), context=b"rpt-1"
        )


def test_vault_refuses_data_sealed_under_another_key() -> None:
    sealed = Vault(bytes(32)).seal(b"x", context=b"c")
    with pytest.raises(ValueError, match="not the current key"):
        Vault(bytes(range(32))).open(sealed, context=b"c")
