"""Bearer tokens: minting, verification failures with reasons, rotation, dev keys."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.runtime.tokens import (
    ALL_ZONES,
    DEV_AUDIENCE,
    DEV_ISSUER,
    Principal,
    TokenInvalid,
    TokenIssuer,
    TokenVerifier,
    ensure_dev_keypair,
    mint_dev_token,
)

ISSUER = "xiezuo-test"
AUDIENCE = "xiezuo"


def _keypair() -> tuple[str, str]:
    """A fresh Ed25519 (private PEM, public PEM)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


ALICE = Principal(
    subject="alice",
    roles=frozenset({"intake_officer", "zone_chief"}),
    county_id="c1",
    zone_ids=("z1", "z2"),
    township_ids=("t1",),
)


@pytest.fixture
def keys() -> tuple[str, str]:
    return _keypair()


def _verifier(*publics: str, audience: str = AUDIENCE, issuer: str = ISSUER) -> TokenVerifier:
    return TokenVerifier(list(publics), issuer=issuer, audience=audience)


def _issuer(private: str, audience: str = AUDIENCE, issuer: str = ISSUER) -> TokenIssuer:
    return TokenIssuer(private, issuer=issuer, audience=audience)


def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenInvalid) as caught:
        verifier.verify(token)
    return caught.value.reason


def test_round_trip_restores_the_principal(keys: tuple[str, str]) -> None:
    private, public = keys
    token = _issuer(private).issue(ALICE)
    assert _verifier(public).verify(token) == ALICE


def test_claims_carry_scope_and_identity(keys: tuple[str, str]) -> None:
    private, _ = keys
    now = datetime(2030, 1, 1, tzinfo=UTC)
    token = _issuer(private).issue(ALICE, ttl=timedelta(minutes=5), now=now)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "alice"
    assert claims["roles"] == ["intake_officer", "zone_chief"]
    assert claims["county_id"] == "c1"
    assert claims["zone_ids"] == ["z1", "z2"]
    assert claims["township_ids"] == ["t1"]
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_each_token_has_its_own_jti(keys: tuple[str, str]) -> None:
    private, _ = keys
    issuer = _issuer(private)
    first, second = (
        jwt.decode(issuer.issue(ALICE), options={"verify_signature": False}) for _ in "ab"
    )
    assert first["jti"] != second["jti"]


def test_expired_token_is_rejected(keys: tuple[str, str]) -> None:
    private, public = keys
    token = _issuer(private).issue(
        ALICE, ttl=timedelta(minutes=1), now=datetime.now(UTC) - timedelta(hours=1)
    )
    assert _reason(_verifier(public), token) == "token has expired"


def test_token_from_the_future_is_rejected(keys: tuple[str, str]) -> None:
    private, public = keys
    token = _issuer(private).issue(ALICE, now=datetime.now(UTC) + timedelta(hours=1))
    assert "not yet valid" in _reason(_verifier(public), token)


def test_wrong_key_is_rejected(keys: tuple[str, str]) -> None:
    private, _ = keys
    _, other_public = _keypair()
    reason = _reason(_verifier(other_public), _issuer(private).issue(ALICE))
    assert reason == "token signature does not match any trusted key"


def test_wrong_audience_is_rejected(keys: tuple[str, str]) -> None:
    private, public = keys
    token = _issuer(private, audience="someone-else").issue(ALICE)
    assert _reason(_verifier(public), token) == "token audience is not 'xiezuo'"


def test_wrong_issuer_is_rejected(keys: tuple[str, str]) -> None:
    private, public = keys
    token = _issuer(private, issuer="mallory").issue(ALICE)
    assert _reason(_verifier(public), token) == "token issuer is not 'xiezuo-test'"


def test_tampered_payload_is_rejected(keys: tuple[str, str]) -> None:
    private, public = keys
    header, payload, signature = _issuer(private).issue(ALICE).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["county_id"] = "c2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    reason = _reason(_verifier(public), f"{header}.{forged}.{signature}")
    assert reason == "token signature does not match any trusted key"


def test_malformed_token_is_rejected(keys: tuple[str, str]) -> None:
    _, public = keys
    assert _reason(_verifier(public), "not-a-jwt").startswith("malformed token")


def test_unsigned_and_hmac_tokens_are_rejected(keys: tuple[str, str]) -> None:
    _, public = keys
    claims = {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": 4_000_000_000}
    unsigned = jwt.encode(claims, "", algorithm="none")
    # Whatever its key, an HMAC token must not pass: that is the algorithm-confusion forgery.
    hmac = jwt.encode(claims, "s" * 32, algorithm="HS256")
    assert _reason(_verifier(public), unsigned) == "algorithm 'none' is not allowed"
    assert _reason(_verifier(public), hmac) == "algorithm 'HS256' is not allowed"


def test_missing_claim_is_named(keys: tuple[str, str]) -> None:
    private, public = keys
    now = datetime.now(UTC)
    claims = {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + timedelta(1)}
    token = jwt.encode({**claims, "jti": "j", "roles": []}, private, algorithm="EdDSA")
    assert _reason(_verifier(public), token) == "token lacks the 'county_id' claim"


def test_badly_shaped_claim_is_rejected(keys: tuple[str, str]) -> None:
    private, public = keys
    now = datetime.now(UTC)
    claims = {
        "sub": "x",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(hours=1),
        "jti": "j",
        "roles": "admin",
        "county_id": "c1",
    }
    token = jwt.encode(claims, private, algorithm="EdDSA")
    assert _reason(_verifier(public), token) == "claim 'roles' must be a list of strings"


def test_rotation_accepts_old_and_new_keys(keys: tuple[str, str]) -> None:
    old_private, old_public = keys
    new_private, new_public = _keypair()
    verifier = _verifier(old_public, new_public)
    assert verifier.verify(_issuer(old_private).issue(ALICE)) == ALICE
    assert verifier.verify(_issuer(new_private).issue(ALICE)) == ALICE


def test_token_without_kid_is_tried_against_every_key(keys: tuple[str, str]) -> None:
    private, public = keys
    _, other_public = _keypair()
    now = datetime.now(UTC)
    claims = {
        "sub": "bob",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + timedelta(hours=1),
        "jti": "j",
        "roles": ["staff"],
        "county_id": "c1",
    }
    token = jwt.encode(claims, private, algorithm="EdDSA")
    assert _verifier(other_public, public).verify(token).subject == "bob"


def test_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one public key"):
        TokenVerifier([], issuer=ISSUER, audience=AUDIENCE)


def test_principal_scope_helpers() -> None:
    assert ALICE.has_role("zone_chief") and not ALICE.has_role("county_head")
    assert ALICE.can_see_county("c1") and not ALICE.can_see_county("c2")
    assert ALICE.can_see_zone("c1", "z2")
    assert not ALICE.can_see_zone("c1", "z3")
    assert not ALICE.can_see_zone("c2", "z1")
    county_wide = Principal(subject="h", county_id="c1", zone_ids=(ALL_ZONES,))
    assert county_wide.can_see_zone("c1", "z9") and not county_wide.can_see_zone("c2", "z9")
    assert not Principal(subject="nobody").can_see_county("")


def test_dev_keypair_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    private_path, public_path = ensure_dev_keypair(directory)
    assert private_path.name == "dev-signing-key.pem"
    assert public_path.name == "dev-signing-key.pub.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    before = private_path.read_bytes(), public_path.read_bytes()
    assert ensure_dev_keypair(directory) == (private_path, public_path)
    assert (private_path.read_bytes(), public_path.read_bytes()) == before


def test_dev_keypair_restores_a_lost_public_key(tmp_path: Path) -> None:
    _, public_path = ensure_dev_keypair(tmp_path)
    original = public_path.read_bytes()
    public_path.unlink()
    ensure_dev_keypair(tmp_path)
    assert public_path.read_bytes() == original


def test_mint_dev_token_verifies_with_the_dev_public_key(tmp_path: Path) -> None:
    token = mint_dev_token(
        key_dir=tmp_path,
        subject="alice",
        roles=["intake_officer"],
        county_id="c1",
        zone_ids=["z1"],
        ttl_seconds=60,
    )
    _, public_path = ensure_dev_keypair(tmp_path)
    verifier = TokenVerifier([public_path.read_text()], issuer=DEV_ISSUER, audience=DEV_AUDIENCE)
    principal = verifier.verify(token)
    assert principal == Principal(
        subject="alice", roles=frozenset({"intake_officer"}), county_id="c1", zone_ids=("z1",)
    )


def test_a_verified_token_is_refused_once_it_expires(keys: tuple[str, str]) -> None:
    # The verifier remembers tokens it checked; expiry must still apply to a remembered one.
    private, public = keys
    token = _issuer(private).issue(ALICE, ttl=timedelta(minutes=2))
    now = [datetime.now(UTC).timestamp()]
    verifier = TokenVerifier([public], issuer=ISSUER, audience=AUDIENCE, clock=lambda: now[0])
    assert verifier.verify(token) == ALICE
    now[0] += 60
    assert verifier.verify(token) == ALICE
    now[0] += 80  # 20 s past exp, within the 30 s leeway
    assert verifier.verify(token) == ALICE
    now[0] += 15
    assert _reason(verifier, token) == "token has expired"


def test_a_remembered_token_does_not_vouch_for_an_altered_one(keys: tuple[str, str]) -> None:
    private, public = keys
    verifier = _verifier(public)
    token = _issuer(private).issue(ALICE)
    assert verifier.verify(token) == ALICE
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["county_leader"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert "signature" in _reason(verifier, f"{header}.{forged_payload}.{signature}")
    assert verifier.verify(token) == ALICE
