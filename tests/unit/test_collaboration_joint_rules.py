"""Joint-case rules and the network file's joint kinds and city signing key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.collaboration.domain.joint_case import (
    JointKind,
    JointRulesInvalid,
    JointStepRefused,
    check_accept,
    check_close,
    parse_joint_rules,
)
from services.collaboration.domain.network import Network, NetworkFileInvalid, parse_network
from services.collaboration.settings import DEFAULT_JOINT_RULES_FILE
from services.collaboration.signing_keys import public_pem
from services.demo.joint import first_township
from services.demo.network import NEIGHBOUR_COUNTY_FILE


def _pem(key: Ed25519PrivateKey, indent: str) -> str:
    return "".join(f"{indent}{line}\n" for line in public_pem(key).strip().splitlines())


def _network(joint_kinds: str, city_key: Ed25519PrivateKey | None, a_key: Ed25519PrivateKey) -> str:
    city = "city_commission:\n  id: city-x\n  name: 西岭市纪委监委\n"
    if city_key is not None:
        city += "  public_key: |\n" + _pem(city_key, "    ")
    return (
        "network: n\nversion: 1\n"
        + city
        + "counties:\n"
        + "  - county_id: a\n    name: 甲县\n    public_key: |\n"
        + _pem(a_key, "      ")
        + "  - county_id: b\n    name: 乙县\n    public_key: |\n"
        + _pem(Ed25519PrivateKey.generate(), "      ")
        + "agreements:\n  - counties: [a, b]\n    kinds: [other]\n"
        + joint_kinds
    )


def test_the_shipped_rules_bound_every_kinds_share() -> None:
    rules = parse_joint_rules(DEFAULT_JOINT_RULES_FILE.read_text(encoding="utf-8"))
    assert set(rules.rules) == set(JointKind)
    assert rules.share(JointKind.DISCIPLINE, 0) == 2
    assert rules.share(JointKind.DUTY_CRIME, 0) == 3
    with pytest.raises(ValueError, match=r"2\.\.6"):
        rules.share(JointKind.DUTY_CRIME, 1)


def test_a_rule_file_with_bad_bounds_or_an_unknown_kind_lists_every_error() -> None:
    with pytest.raises(JointRulesInvalid) as refused:
        parse_joint_rules(
            "version: 1\nkinds:\n"
            "  discipline: {min_share: 3, max_share: 2, default_share: 2}\n"
            "  bribery: {min_share: 1, max_share: 2, default_share: 1}\n"
        )
    errors = " ".join(refused.value.errors)
    assert "kinds.discipline: needs min_share" in errors
    assert "kinds.bribery: unknown kind" in errors
    assert "kinds.duty_crime: missing" in errors


def test_the_network_lists_joint_kinds_and_the_citys_key_and_keeps_them_stored() -> None:
    city = Ed25519PrivateKey.generate()
    network, _ = parse_network(
        _network("    joint_kinds: [discipline]\n", city, Ed25519PrivateKey.generate())
    )
    assert network.covers_joint("a", "b", JointKind.DISCIPLINE)
    assert not network.covers_joint("a", "b", JointKind.DUTY_CRIME)
    assert not network.covers_joint("a", "a", JointKind.DISCIPLINE)
    stored = Network.from_json(network.to_json())
    assert stored == network
    key = stored.city_public_key()
    assert key is not None
    assert key.public_bytes_raw() == city.public_key().public_bytes_raw()


def test_a_network_without_joint_kinds_or_city_key_covers_no_joint_case() -> None:
    network, _ = parse_network(_network("", None, Ed25519PrivateKey.generate()))
    assert network.city_public_key() is None
    assert not any(network.covers_joint("a", "b", kind) for kind in JointKind)


def test_an_unknown_joint_kind_or_the_city_holding_a_countys_key_is_refused_by_line() -> None:
    shared = Ed25519PrivateKey.generate()
    with pytest.raises(NetworkFileInvalid) as refused:
        parse_network(_network("    joint_kinds: [bribery]\n", shared, shared))
    errors = refused.value.errors
    assert any(
        "joint_kinds: 'bribery' is not a kind" in e and e.startswith("line ") for e in errors
    )
    assert any("city_commission.public_key: the same key as a county's" in e for e in errors)


def test_only_a_county_asked_to_join_decides_and_only_an_open_case_closes() -> None:
    check_accept("partner", "received")
    with pytest.raises(JointStepRefused):
        check_accept("opener", "opened")
    with pytest.raises(JointStepRefused):
        check_accept("partner", "accepted")
    check_close("opener", "opened")
    check_close("partner", "accepted")
    for role, state in (("partner", "received"), ("opener", "closed"), ("city", "opened")):
        with pytest.raises(JointStepRefused):
            check_close(role, state)


def test_the_demo_joins_from_a_township_of_the_neighbour() -> None:
    assert first_township(NEIGHBOUR_COUNTY_FILE) == "qy-t1"
