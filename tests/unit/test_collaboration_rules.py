"""Collaboration's pure rules: the network file, the allowlist per kind, the signatures."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.collaboration.domain.letter import (
    Direction,
    LetterState,
    Step,
    StepRefused,
    next_state,
)
from services.collaboration.domain.letter_kinds import (
    LetterKind,
    LetterKindsInvalid,
    content_problems,
    parse_letter_kinds,
)
from services.collaboration.domain.network import NetworkFileInvalid, parse_network
from services.collaboration.domain.signing import sign, signed_bytes, verify
from services.collaboration.domain.transfer_rules import (
    TransferRulesInvalid,
    parse_transfer_rules,
)
from services.collaboration.settings import DEFAULT_LETTER_KINDS_FILE
from tests.collaboration_network import network_yaml

KINDS = parse_letter_kinds(DEFAULT_LETTER_KINDS_FILE.read_text(encoding="utf-8"))


def test_the_shipped_allowlist_covers_every_kind_and_never_a_reporter() -> None:
    assert set(KINDS.rules) == set(LetterKind)
    for rule in KINDS.rules.values():
        assert not any(name.startswith("reporter_") for name in rule.fields)
        assert "report_text" not in rule.fields
    assert KINDS.rule(LetterKind.VERIFY_FACT).excerpt_allowed
    assert not KINDS.rule(LetterKind.REGISTRY_CHECK).excerpt_allowed


def test_a_kinds_file_listing_a_reporter_field_or_missing_a_kind_is_refused() -> None:
    text = (
        "version: 1\nkinds:\n"
        "  verify_fact: {working_days: 5, fields: [reporter_name, report_text]}\n"
    )
    with pytest.raises(LetterKindsInvalid) as refused:
        parse_letter_kinds(text)
    errors = refused.value.errors
    assert any("reporter_name may never cross" in e for e in errors)
    assert any("report_text may never cross" in e for e in errors)
    assert any("kinds.other: missing" in e for e in errors)


@pytest.mark.parametrize(
    "name", ["reporter_name", "informant_phone", "report_text", "receipt_code", "other_subjects"]
)
def test_both_allowlists_refuse_a_field_that_may_never_cross_in_the_same_words(name: str) -> None:
    kinds = "version: 1\nkinds:\n" + "".join(
        f"  {kind.value}: {{working_days: 5, fields: [subject_name, {name}]}}\n"
        for kind in LetterKind
    )
    transfers = (
        "version: 1\nmodes:\n"
        f"  transfer: {{fields: [subject_name, {name}]}}\n"
        "  designation: {fields: [subject_name]}\n"
    )
    with pytest.raises(LetterKindsInvalid) as letters_refused:
        parse_letter_kinds(kinds)
    with pytest.raises(TransferRulesInvalid) as transfers_refused:
        parse_transfer_rules(transfers)
    assert letters_refused.value.errors[0] == (
        f"kinds.verify_fact.fields: {name} may never cross to another county"
    )
    assert transfers_refused.value.errors == [
        f"modes.transfer.fields: {name} may never cross to another county"
    ]


def test_an_allowlist_field_list_that_is_not_names_is_refused_in_both() -> None:
    with pytest.raises(TransferRulesInvalid) as refused:
        parse_transfer_rules("version: 1\nmodes:\n  transfer: {fields: 3}\n  designation: {}\n")
    assert refused.value.errors == ["modes.transfer.fields: must be a list of field names"]


def test_content_outside_the_allowlist_is_named_field_by_field() -> None:
    rule = KINDS.rule(LetterKind.REGISTRY_CHECK)
    problems = content_problems(
        rule,
        question="请查询该人名下房产登记",
        fields={"subject_name": "王某", "reporter_name": "李某", "second_subject": "赵某"},
        excerpt="举报内容摘录",
    )
    names = [name for name, _ in problems]
    assert names == ["fields[reporter_name]", "fields[second_subject]", "excerpt"]
    fine = content_problems(
        KINDS.rule(LetterKind.VERIFY_FACT),
        question="核实其2025年是否在贵县某公司兼职",
        fields={"subject_name": "王某", "subject_employer": "某公司"},
        excerpt="案卷摘录：……",
    )
    assert fine == []


def _keys() -> dict[str, Ed25519PrivateKey]:
    return {"county-a": Ed25519PrivateKey.generate(), "county-b": Ed25519PrivateKey.generate()}


def test_a_good_network_file_reads_with_its_agreements() -> None:
    network, sha = parse_network(network_yaml(_keys()))
    assert [c.county_id for c in network.counties] == ["county-a", "county-b"]
    assert network.covers("county-a", "county-b", LetterKind.LOCATE_PERSON)
    assert not network.covers("county-a", "county-a", LetterKind.LOCATE_PERSON)
    assert not network.covers("county-a", "county-c", LetterKind.OTHER)
    assert len(sha) == 64
    assert type(network).from_json(network.to_json()) == network


def test_a_bad_network_file_is_refused_as_a_whole_with_every_error_and_its_line() -> None:
    rsa_like = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    good = network_yaml(_keys())
    text = good.replace("version: 1", "version: 0").replace("[verify_fact,", "[fetch_file,")
    text += "  - counties: [county-a, county-z]\n    kinds: [other]\n    color: blue\n"
    ec_key = "".join(f"      {line}\n" for line in rsa_like.strip().splitlines())
    text = text.replace(
        "agreements:\n",
        f"  - county_id: county-a\n    name: 重复县\n    public_key: |\n{ec_key}agreements:\n",
    )
    with pytest.raises(NetworkFileInvalid) as refused:
        parse_network(text)
    errors = refused.value.errors
    assert all(e.startswith("line ") for e in errors), errors
    joined = "\n".join(errors)
    assert "version: must be a positive integer" in joined
    assert "'fetch_file' is not a kind" in joined
    assert "'county-z' is not a listed county" in joined
    assert "color: unknown key" in joined
    assert "not an Ed25519 key" in joined
    assert "'county-a' is already listed on line" in joined
    # Each error names the line of the entry it is about.
    duplicate = next(e for e in errors if "already listed" in e)
    line = int(duplicate.split(":")[0].removeprefix("line "))
    assert text.splitlines()[line - 1].strip() == "- county_id: county-a"


def test_not_yaml_is_refused_with_its_line() -> None:
    with pytest.raises(NetworkFileInvalid) as refused:
        parse_network("network: x\ncounties: [unclosed\n")
    assert refused.value.errors[0].startswith("line ")


def _message(payload: dict[str, object], event_id: str = "e-1") -> bytes:
    return signed_bytes(
        event_id=event_id,
        event_type="xiezuo.collaboration.letter_sent.v1",
        source="xiezuo/collaboration/county-a",
        subject="L-1",
        payload=payload,
    )


def test_a_signature_covers_id_and_payload_but_not_itself() -> None:
    key = Ed25519PrivateKey.generate()
    payload: dict[str, object] = {"letter_id": "L-1", "question": "核实", "signature": ""}
    signature = sign(key, _message(payload))
    signed = {**payload, "signature": signature}
    assert verify(key.public_key(), _message(signed), signature)
    # Same payload under another id (a replay under a new CloudEvent id): refused.
    assert not verify(key.public_key(), _message(signed, "e-2"), signature)
    tampered = {**signed, "question": "核实并调取全部案卷"}
    assert not verify(key.public_key(), _message(tampered), signature)
    other = Ed25519PrivateKey.generate()
    assert not verify(other.public_key(), _message(signed), signature)
    assert not verify(key.public_key(), _message(signed), "not base64!")
    # The canonical form does not depend on key order.
    reordered = json.loads(json.dumps(dict(reversed(list(signed.items())))))
    assert verify(key.public_key(), _message(reordered), signature)


def test_letter_steps_follow_the_side_and_state() -> None:
    assert next_state(Direction.OUTBOUND, LetterState.AWAITING_APPROVAL, Step.APPROVE) == "sent"
    assert next_state(Direction.INBOUND, LetterState.RECEIVED, Step.DECLINE) == "declined"
    with pytest.raises(StepRefused):
        next_state(Direction.INBOUND, LetterState.RECEIVED, Step.ANSWER)
    with pytest.raises(StepRefused):
        next_state(Direction.OUTBOUND, LetterState.AWAITING_APPROVAL, Step.ACCEPT)
